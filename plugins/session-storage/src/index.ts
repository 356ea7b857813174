/**
 * @rmqtt-ts/plugin-session-storage — persistent sessions that survive a restart (the SessionStore
 * extension point): connect info, subscriptions, inflight messages both ways, queued messages and
 * expiry, in the embedded LMDB store (`sled`, RMQTT's name for its embedded store) or in Redis
 * (`redis`, `redis-cluster`). At start-up the unexpired sessions come back as offline sessions that go
 * on collecting messages until their clients return.
 *
 * With it, the broker acknowledges a QoS 1/2 message to a persistent session (PUBACK / PUBREC) only
 * once the message and its deliveries are written. Immutable, as in RMQTT: it starts with the broker
 * and cannot be stopped or reloaded at run time.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { open as lmdb } from 'lmdb';
import { Cluster, Redis } from 'ioredis';
import { definePlugin } from '@rmqtt-ts/plugin-api';
import { openStorage, type StorageDrivers } from '@rmqtt-ts/plugin-api/storage';
import { configSchema, type SessionStorageConfig } from './config.js';
import { KvSessionStore } from './kv-session-store.js';

export { configSchema, type SessionStorageConfig } from './config.js';
export { KvSessionStore } from './kv-session-store.js';

export const drivers: StorageDrivers = {
  lmdb: lmdb as unknown as StorageDrivers['lmdb'],
  lmdbModule: pathToFileURL(createRequire(import.meta.url).resolve('lmdb')).href,
  Redis: Redis as unknown as StorageDrivers['Redis'],
  Cluster: Cluster as unknown as StorageDrivers['Cluster'],
};

export default definePlugin<SessionStorageConfig>({
  name: 'session-storage',
  apiVersion: '^1.0.0',
  description: 'Persistent sessions in the embedded store or Redis',
  immutable: true,
  configSchema,
  create(ctx) {
    let store: KvSessionStore | undefined;
    return {
      async init() {
        const kv = await openStorage(ctx.config.storage, {
          node: ctx.broker.nodeId,
          namespace: 'session',
          timeoutMs: ctx.config.backend_timeout,
          drivers,
          logger: ctx.logger,
        });
        store = new KvSessionStore(kv);
        ctx.logger.info({ store: kv.description }, 'session storage opened');
        ctx.extensions.provide('sessionStore', store);
      },
      attrs() {
        return { storage: ctx.config.storage.type, store: store?.description ?? null };
      },
      async dispose() {
        await store?.close();
      },
    };
  },
});
