/** Config of session storage: RMQTT's rmqtt-session-storage.toml keys. */
import type { ConfigSchema } from '@rmqtt-ts/plugin-api';
import { storageSchema, type StorageConfig } from '@rmqtt-ts/plugin-api/storage';

export interface SessionStorageConfig {
  storage: StorageConfig;
  /** ms a backend call may take; 0 = no limit. */
  backend_timeout: number;
}

export const configSchema: ConfigSchema = {
  storage: storageSchema({ types: ['sled', 'redis', 'redis-cluster'], type: 'sled', path: './data/session/{node}', prefix: 'session-{node}' }),
  backend_timeout: { doc: 'Redis: timeout of connecting and of one call (0 = none); the embedded store commits synchronously.', format: 'duration', default: '15s' },
};
