/** Secrets of the typed BrokerConfig, masked for display (the HTTP API shows configs this way). */
import { MASK } from './engine.js';
import type { BrokerConfig } from './types.js';

/**
 * A copy of `config` with secrets replaced by '******'. The broker schema marks node.cookie sensitive;
 * for the RMQTT-named properties use maskSecrets(properties, schema) instead.
 */
export function maskBrokerConfig(config: BrokerConfig): BrokerConfig {
  const copy = structuredClone(config);
  copy.node.cookie = MASK;
  return copy;
}
