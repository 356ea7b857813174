/** KvSessionStore over each backend against the SessionStore conformance suite. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { describeSessionStore, startRedis, startRedisCluster, testLogger, type SessionStoreHandle } from '@rmqtt-ts/testkit';
import { openStorage, type KvOp, type KvStore, type StorageConfig } from '@rmqtt-ts/plugin-api/storage';
import { KvSessionStore, drivers } from '../src/index.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function sled(path: string): StorageConfig {
  return {
    type: 'sled',
    sled: { path, cache_capacity: 8 * 1024 * 1024, sync_writes: false },
    redis: { url: '', prefix: '' },
    'redis-cluster': { urls: [], prefix: '' },
  };
}

/** A backend whose writes can be made to fail, as when the server is away. */
class Breakable implements KvStore {
  broken = false;
  constructor(readonly inner: KvStore) {}
  get description(): string {
    return this.inner.description;
  }
  write(ops: readonly KvOp[]): Promise<void> {
    return this.broken ? Promise.reject(new Error('backend away')) : this.inner.write(ops);
  }
  entries(): AsyncIterable<readonly [string, Buffer]> {
    return this.inner.entries();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

let backend: Breakable | undefined;
const open = async (config: StorageConfig): Promise<KvSessionStore> => {
  backend = new Breakable(await openStorage(config, { node: 1, namespace: 'session', timeoutMs: 5000, drivers, logger: testLogger() }));
  return new KvSessionStore(backend);
};
const breakWrites = (broken: boolean): void => {
  backend!.broken = broken;
};

/** The suite's handle on a store over `config`: reopened as a restart would, writes breakable. */
async function handle(config: StorageConfig): Promise<SessionStoreHandle> {
  let store = await open(config);
  return {
    store,
    reopen: async () => {
      await store.close();
      store = await open(config);
      return store;
    },
    close: () => store.close(),
    breakWrites,
  };
}

describeSessionStore('lmdb', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rmqtt-session-conf-'));
  dirs.push(dir);
  const config = sled(join(dir, 'db'));
  return handle(config);
});

// ---------- Redis: one server and a cluster of six ----------

const redisServers: Array<{ destroy(): Promise<void> }> = [];
afterAll(async () => {
  await Promise.all(redisServers.map((r) => r.destroy()));
});

let redisUrl: Promise<string> | undefined;
let clusterUrls: Promise<string[]> | undefined;
let prefixes = 0;

function redisConfig(type: 'redis' | 'redis-cluster', url: string | string[]): StorageConfig {
  const prefix = `conformance-${process.pid}-${prefixes++}`;
  return {
    type,
    sled: { path: '', cache_capacity: 0, sync_writes: false },
    redis: { url: typeof url === 'string' ? url : '', prefix },
    'redis-cluster': { urls: Array.isArray(url) ? url : [], prefix },
  };
}

describeSessionStore('redis', async () => {
  redisUrl ??= startRedis().then((r) => {
    redisServers.push(r);
    return r.url;
  });
  const config = redisConfig('redis', await redisUrl);
  return handle(config);
});

describeSessionStore('redis cluster', async () => {
  clusterUrls ??= startRedisCluster().then((c) => {
    redisServers.push(c);
    return c.urls;
  });
  const config = redisConfig('redis-cluster', await clusterUrls);
  return handle(config);
});
