/** KvSessionStore over each backend against the SessionStore conformance suite. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { describeSessionStore, testLogger } from '@rmqtt-ts/testkit';
import { openStorage, type StorageConfig } from '@rmqtt-ts/plugin-api/storage';
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

const open = async (config: StorageConfig): Promise<KvSessionStore> =>
  new KvSessionStore(await openStorage(config, { node: 1, namespace: 'session', timeoutMs: 5000, drivers, logger: testLogger() }));

describeSessionStore('leveldb', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rmqtt-session-conf-'));
  dirs.push(dir);
  const config = sled(join(dir, 'db'));
  let store = await open(config);
  return {
    store,
    reopen: async () => {
      await store.close();
      store = await open(config);
      return store;
    },
    close: () => store.close(),
  };
});
