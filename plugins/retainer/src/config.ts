/** Config of the retainer: RMQTT's rmqtt-retainer.toml keys. */
import type { ConfigSchema } from '@rmqtt-ts/plugin-api';

export interface RetainerConfig {
  storage: {
    type: 'ram' | 'sled' | 'redis';
    sled: { path: string; cache_capacity: number };
    redis: { url: string; prefix: string };
  };
  /** 0 = no limit; when full only existing topics can be replaced. */
  max_retained_messages: number;
  /** Bytes; a larger message is routed but not retained. */
  max_payload_size: number;
  /** ms; 0 = retained messages never expire (an MQTT 5 Message Expiry still applies). */
  retained_message_ttl: number;
  batch_messages_limit: number;
  /** ms; storage call timeout (durable backends). */
  backend_timeout: number;
}

export const configSchema: ConfigSchema = {
  storage: {
    type: {
      doc: 'Where retained messages live: ram (in memory). The durable types are accepted by name and need their backend.',
      format: ['ram', 'sled', 'redis'],
      default: 'ram',
    },
    // RMQTT's durable backends: accepted (a warning names them when set) until a backend is built in
    sled: {
      path: { doc: 'Directory of the embedded store.', format: String, default: './data/retain/{node}', notImplemented: true },
      cache_capacity: { doc: 'Cache size of the embedded store.', format: 'size', default: '3G', notImplemented: true },
    },
    redis: {
      url: { doc: 'Redis URL.', format: String, default: 'redis://127.0.0.1:6379/', sensitive: true, notImplemented: true },
      prefix: { doc: 'Key prefix in Redis.', format: String, default: 'retain', notImplemented: true },
    },
  },
  max_retained_messages: { doc: 'Maximum number of retained messages (0 = no limit).', format: 'nat', default: 0 },
  max_payload_size: { doc: 'Largest payload that is retained.', format: 'size', default: '1MB' },
  retained_message_ttl: { doc: 'Lifetime of retained messages (0 = never expire).', format: 'duration', default: '0s' },
  batch_messages_limit: { doc: 'Messages read per batch from a durable backend.', format: 'nat', default: 500, notImplemented: true },
  backend_timeout: { doc: 'Timeout of a storage call.', format: 'duration', default: '8s', notImplemented: true },
};
