/** StoredMessages in memory and over each backend against the MessageStore conformance suite. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { describeMessageStore, startRedis, startRedisCluster, testLogger } from '@rmqtt-ts/testkit';
import { openStorage, type StorageConfig } from '@rmqtt-ts/plugin-api/storage';
import { StoredMessages, drivers } from '../src/index.js';

const LIMITS = { maxCount: 100_000, maxBytes: 64 * 1024 * 1024 };
const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups) await c();
});

describeMessageStore('ram', async () => ({ store: new StoredMessages(LIMITS) }));

let prefixes = 0;
function config(type: StorageConfig['type'], where: string | string[]): StorageConfig {
  const prefix = `conformance-${process.pid}-${prefixes++}`;
  return {
    type,
    sled: { path: typeof where === 'string' ? where : '', cache_capacity: 8 * 1024 * 1024, sync_writes: false },
    redis: { url: typeof where === 'string' ? where : '', prefix },
    'redis-cluster': { urls: Array.isArray(where) ? where : [], prefix },
  };
}

async function open(c: StorageConfig): Promise<StoredMessages> {
  const logger = testLogger();
  const s = new StoredMessages(LIMITS, await openStorage(c, { node: 1, namespace: 'message', timeoutMs: 5000, drivers, logger }), logger);
  await s.load(Date.now());
  return s;
}

function durable(where: () => Promise<string | string[]>, type: StorageConfig['type']) {
  return async () => {
    const c = config(type, await where());
    let store = await open(c);
    return {
      store,
      reopen: async () => {
        await store.written();
        await store.close();
        store = await open(c);
        return store;
      },
      close: () => store.close(),
    };
  };
}

describeMessageStore(
  'lmdb',
  durable(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rmqtt-message-conf-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return join(dir, 'db');
  }, 'sled'),
);

let redisUrl: Promise<string> | undefined;
describeMessageStore(
  'redis',
  durable(() => {
    redisUrl ??= startRedis().then((r) => {
      cleanups.push(() => r.destroy());
      return r.url;
    });
    return redisUrl;
  }, 'redis'),
);

let clusterUrls: Promise<string[]> | undefined;
describeMessageStore(
  'redis cluster',
  durable(() => {
    clusterUrls ??= startRedisCluster().then((c) => {
      cleanups.push(() => c.destroy());
      return c.urls;
    });
    return clusterUrls;
  }, 'redis-cluster'),
);
