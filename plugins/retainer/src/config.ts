/** Config of the retainer: RMQTT's rmqtt-retainer.toml keys. */
import type { ConfigSchema } from '@rmqtt-ts/plugin-api';
import { storageSchema, type StorageConfig } from '@rmqtt-ts/plugin-api/storage';

export interface RetainerConfig {
  storage: StorageConfig;
  /** 0 = no limit; when full only existing topics can be replaced. */
  max_retained_messages: number;
  /** Bytes; a larger message is routed but not retained. */
  max_payload_size: number;
  /** ms; 0 = retained messages never expire (an MQTT 5 Message Expiry still applies). */
  retained_message_ttl: number;
  batch_messages_limit: number;
  /** ms; storage call timeout (durable backends); 0 = none. */
  backend_timeout: number;
}

export const configSchema: ConfigSchema = {
  storage: storageSchema({ types: ['ram', 'sled', 'redis'], type: 'ram', path: './data/retain/{node}', prefix: 'retain' }),
  max_retained_messages: { doc: 'Maximum number of retained messages (0 = no limit).', format: 'nat', default: 0 },
  max_payload_size: { doc: 'Largest payload that is retained.', format: 'size', default: '1MB' },
  retained_message_ttl: { doc: 'Lifetime of retained messages (0 = never expire).', format: 'duration', default: '0s' },
  batch_messages_limit: { doc: "RMQTT's read batch of a durable backend; rmqtt-ts reads a backend once, at start-up.", format: 'nat', default: 500, notImplemented: true },
  backend_timeout: { doc: 'Redis: timeout of connecting and of one call (0 = none); the embedded store commits synchronously.', format: 'duration', default: '8s' },
};
