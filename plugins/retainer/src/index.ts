/**
 * @rmqtt-ts/plugin-retainer — retained messages (the RetainStore extension point). Without it the
 * broker announces Retain Available 0. Kept in memory (`ram`), or in memory with a durable copy that a
 * restarted broker reads back: `sled` (the embedded LMDB store) or `redis`. It refuses to stop:
 * retained state would be lost.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { open as lmdb } from 'lmdb';
import { Cluster, Redis } from 'ioredis';
import { definePlugin, RmqttError } from '@rmqtt-ts/plugin-api';
import { openStorage, type StorageDrivers } from '@rmqtt-ts/plugin-api/storage';
import { configSchema, type RetainerConfig } from './config.js';
import { DurableRetainStore } from './durable-store.js';
import { RamRetainStore } from './ram-store.js';

export { RamRetainStore, type RamStoreLimits, type RetainListener } from './ram-store.js';
export { DurableRetainStore } from './durable-store.js';
export { configSchema, type RetainerConfig } from './config.js';

export const drivers: StorageDrivers = {
  lmdb: lmdb as unknown as StorageDrivers['lmdb'],
  lmdbModule: pathToFileURL(createRequire(import.meta.url).resolve('lmdb')).href,
  Redis: Redis as unknown as StorageDrivers['Redis'],
  Cluster: Cluster as unknown as StorageDrivers['Cluster'],
};

/** How long stopping waits for writes to an unreachable backend. */
const SHUTDOWN_WAIT_MS = 5_000;

function limitsOf(c: RetainerConfig) {
  return { maxMessages: c.max_retained_messages, maxPayloadSize: c.max_payload_size, ttl: c.retained_message_ttl };
}

export default definePlugin<RetainerConfig>({
  name: 'retainer',
  apiVersion: '^1.0.0',
  description: 'Retained messages (ram store)',
  configSchema,
  create(ctx) {
    let store: RamRetainStore | DurableRetainStore | undefined;
    return {
      async init() {
        const c = ctx.config;
        if (c.storage.type === 'ram') {
          store = new RamRetainStore(limitsOf(c), ctx.broker.scheduler);
        } else {
          const kv = await openStorage(c.storage, { node: ctx.broker.nodeId, namespace: 'retain', timeoutMs: c.backend_timeout, drivers, logger: ctx.logger });
          const durable = new DurableRetainStore(kv, limitsOf(c), ctx.broker.scheduler, ctx.logger);
          const n = await durable.load(Date.now());
          ctx.logger.info({ store: kv.description, retained: n }, 'retained messages loaded');
          store = durable;
        }
        ctx.extensions.provide('retainStore', store);
      },
      stop() {
        // retained messages live only in this store: stopping would lose them (RMQTT refuses too)
        return false;
      },
      reload(config) {
        if (config.storage.type !== ctx.config.storage.type) {
          throw new RmqttError('ERR_CONFIG', 'retainer: storage.type cannot change at run time');
        }
        if (store) store.limits = limitsOf(config);
      },
      attrs() {
        return {
          storage: ctx.config.storage.type,
          retained: store?.count() ?? 0,
          ...(store instanceof DurableRetainStore ? { store: store.description, write_errors: store.writeErrors } : {}),
        };
      },
      async dispose() {
        if (store instanceof DurableRetainStore) {
          let wait: NodeJS.Timeout | undefined;
          await Promise.race([store.written(), new Promise((r) => (wait = setTimeout(r, SHUTDOWN_WAIT_MS)))]);
          clearTimeout(wait);
          await store.close();
        } else {
          store?.close();
        }
      },
    };
  },
});
