/**
 * @rmqtt-ts/plugin-message-storage — published messages kept until they expire (the MessageStore
 * extension point) and replayed to a later matching subscription, shared subscriptions included, as
 * RMQTT does: only to a subscription the session did not have before, never twice to one session, and
 * to a shared group only what the group has not taken. Retained messages are the retainer's and are
 * not stored here.
 *
 * Kept in memory (`ram`, RMQTT's default), and with `sled` (the embedded LMDB store), `redis` or
 * `redis-cluster` also written through to a store that a restarted broker reads back. Immutable, as in
 * RMQTT.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { open as lmdb } from 'lmdb';
import { Cluster, Redis } from 'ioredis';
import { definePlugin } from '@rmqtt-ts/plugin-api';
import { openStorage, type StorageDrivers } from '@rmqtt-ts/plugin-api/storage';
import { configSchema, type MessageStorageConfig } from './config.js';
import { StoredMessages, type MessageLimits } from './message-store.js';

export { configSchema, type MessageStorageConfig } from './config.js';
export { StoredMessages, type MessageLimits } from './message-store.js';

export const drivers: StorageDrivers = {
  lmdb: lmdb as unknown as StorageDrivers['lmdb'],
  lmdbModule: pathToFileURL(createRequire(import.meta.url).resolve('lmdb')).href,
  Redis: Redis as unknown as StorageDrivers['Redis'],
  Cluster: Cluster as unknown as StorageDrivers['Cluster'],
};

/** How often expired messages are cleaned up. */
const CLEANUP_INTERVAL_MS = 10_000;
/** How long stopping waits for writes to an unreachable backend. */
const SHUTDOWN_WAIT_MS = 5_000;

function limitsOf(c: MessageStorageConfig): MessageLimits {
  return { maxCount: c.storage.ram.cache_max_count, maxBytes: c.storage.ram.cache_capacity };
}

export default definePlugin<MessageStorageConfig>({
  name: 'message-storage',
  apiVersion: '^1.0.0',
  description: 'Published messages replayed to later subscribers (memory, embedded store or Redis)',
  immutable: true,
  configSchema,
  create(ctx) {
    let store: StoredMessages | undefined;
    let timer: NodeJS.Timeout | undefined;
    return {
      async init() {
        const c = ctx.config;
        if (c.storage.type === 'ram') {
          store = new StoredMessages(limitsOf(c));
        } else {
          const kv = await openStorage(c.storage, { node: ctx.broker.nodeId, namespace: 'message', timeoutMs: c.backend_timeout, drivers, logger: ctx.logger });
          store = new StoredMessages(limitsOf(c), kv, ctx.logger);
          const n = await store.load(Date.now());
          ctx.logger.info({ store: kv.description, messages: n }, 'message storage opened');
        }
        ctx.extensions.provide('messageStore', store);
      },
      start() {
        timer = setInterval(() => store?.cleanup(Date.now(), ctx.config.cleanup_count), CLEANUP_INTERVAL_MS);
        timer.unref();
      },
      stop() {
        clearInterval(timer);
      },
      attrs() {
        return { storage: ctx.config.storage.type, store: store?.description ?? null, messages: store?.count() ?? 0, write_errors: store?.writeErrors ?? 0 };
      },
      async dispose() {
        clearInterval(timer);
        if (store === undefined) return;
        // a backend that is away gets a few seconds; what it did not take is logged by close()
        let wait: NodeJS.Timeout | undefined;
        await Promise.race([store.written(), new Promise((r) => (wait = setTimeout(r, SHUTDOWN_WAIT_MS)))]);
        clearTimeout(wait);
        await store.close();
      },
    };
  },
});
