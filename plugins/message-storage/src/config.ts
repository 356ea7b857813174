/** Config of message storage: RMQTT's rmqtt-message-storage.toml keys. */
import type { ConfigSchema } from '@rmqtt-ts/plugin-api';
import { storageSchema, type StorageConfig } from '@rmqtt-ts/plugin-api/storage';

export interface MessageStorageConfig {
  storage: StorageConfig & {
    ram: { cache_capacity: number; cache_max_count: number; encode: boolean; queue_max: number };
  };
  /** Expired messages removed per cleanup round. */
  cleanup_count: number;
  /** ms a backend call may take; 0 = no limit. */
  backend_timeout: number;
}

export const configSchema: ConfigSchema = {
  storage: {
    ...(storageSchema({ types: ['ram', 'sled', 'redis', 'redis-cluster'], type: 'ram', path: './data/message/{node}', prefix: 'message-{node}' }) as Record<string, unknown>),
    ram: {
      cache_capacity: { doc: 'Most payload bytes kept; the oldest messages make room (every storage type).', format: 'size', default: '3G' },
      cache_max_count: { doc: 'Most messages kept; the oldest make room (every storage type).', format: 'nat', default: 1_000_000 },
      encode: { doc: "RMQTT's in-memory encoding switch; messages are kept as they are.", format: Boolean, default: false, notImplemented: true },
      queue_max: { doc: "RMQTT's store channel limit; stores here are synchronous.", format: 'nat', default: 300_000, notImplemented: true },
    },
  },
  cleanup_count: { doc: 'Expired messages removed per cleanup round (every 10 s).', format: 'nat', default: 5000 },
  backend_timeout: { doc: 'Redis: timeout of connecting and of one call (0 = none); the embedded store commits synchronously.', format: 'duration', default: '15s' },
};
