/** The retainer's durable types: the RetainStore suite over LMDB and Redis, and a broker restart. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { openStorage, type StorageConfig } from '@rmqtt-ts/plugin-api/storage';
import { DeadlineScheduler, RawClient, capturingLogger, describeRetainStore, publishDone, startRedis, testLogger, useTestScope, type TestBroker } from '@rmqtt-ts/testkit';
import retainer, { DurableRetainStore, drivers } from '../src/index.js';

const LIMITS = { maxMessages: 0, maxPayloadSize: 1024 * 1024, ttl: 0 };
const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups) await c();
});
const scope = useTestScope();
// raw clients go before the brokers stop: vitest runs after-hooks last-registered first
const clients: RawClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
});

let prefixes = 0;
function config(type: 'sled' | 'redis', where: string): StorageConfig {
  return {
    type,
    sled: { path: where, cache_capacity: 8 * 1024 * 1024, sync_writes: false },
    redis: { url: where, prefix: `retain-conformance-${process.pid}-${prefixes++}` },
    'redis-cluster': { urls: [], prefix: '' },
  };
}

function durable(type: 'sled' | 'redis', where: () => Promise<string>) {
  return async () => {
    const c = config(type, await where());
    const scheduler = new DeadlineScheduler(testLogger());
    const open = async (): Promise<DurableRetainStore> => {
      const s = new DurableRetainStore(await openStorage(c, { node: 1, namespace: 'retain', timeoutMs: 5000, drivers, logger: testLogger() }), LIMITS, scheduler, testLogger());
      await s.load(Date.now());
      return s;
    };
    let store = await open();
    return {
      store,
      reopen: async () => {
        await store.written();
        await store.close();
        store = await open();
        return store;
      },
      close: async () => {
        await store.close();
        scheduler.close();
      },
    };
  };
}

describeRetainStore(
  'lmdb',
  durable('sled', async () => {
    const dir = scope.dir('rmqtt-retain-conf-');
    return join(dir, 'db');
  }),
);

let redisUrl: Promise<string> | undefined;
describeRetainStore(
  'redis',
  durable('redis', () => {
    redisUrl ??= startRedis().then((r) => {
      cleanups.push(() => r.destroy());
      return r.url;
    });
    return redisUrl;
  }),
);

it('retained messages survive a broker restart with storage.type = "sled"', async () => {
  const dir = scope.dir('rmqtt-retain-sled-');
  writeFileSync(join(dir, 'rmqtt-retainer.toml'), `storage.type = "sled"\nstorage.sled.path = "${dir}/data/{node}"\n`);
  // stopped after the test; stopping the first one earlier, to restart, is fine: Broker.stop runs once
  const start = (): Promise<TestBroker> => scope.broker({ plugins: [retainer], pluginsDir: dir });
  let b = await start();
  let { client } = await RawClient.connect(b.port(), { protocolVersion: 5 });
  clients.push(client);
  await publishDone(client, 'r/a', 'A', { qos: 1, retain: true });
  await publishDone(client, 'r/b', 'B', { qos: 1, retain: true });
  await publishDone(client, 'r/b', '', { qos: 1, retain: true });
  await b.stop();
  b = await start();
  ({ client } = await RawClient.connect(b.port(), { protocolVersion: 5 }));
  clients.push(client);
  await client.subscribe({ filter: 'r/#', qos: 1 });
  const p = await client.expect(3);
  expect([p.topic, p.payload.toString(), p.retain]).toEqual(['r/a', 'A', true]);
  expect(await client.expectSilence(300)).toBe(true);
  expect(b.broker.control.plugin('retainer')?.attrs).toMatchObject({ storage: 'sled', retained: 1 });
});

it('storage.type = "redis" with Redis killed and restarted: retained publishes go on, the writes are retried and land', async () => {
  const redis = await startRedis();
  cleanups.push(() => redis.destroy());
  const dir = scope.dir('rmqtt-retain-redis-');
  writeFileSync(join(dir, 'rmqtt-retainer.toml'), `storage.type = "redis"\nstorage.redis.url = "${redis.url}"\nstorage.redis.prefix = "outage"\nbackend_timeout = "2s"\n`);
  const { logger, lines } = capturingLogger();
  let b = await scope.broker({ plugins: [retainer], pluginsDir: dir, logger });
  let { client } = await RawClient.connect(b.port(), { protocolVersion: 5 });
  clients.push(client);
  await publishDone(client, 'o/a', 'A', { qos: 1, retain: true });
  await redis.stop();
  // acknowledged at once: retained messages are written behind
  await publishDone(client, 'o/b', 'B', { qos: 1, retain: true });
  const attrs = (): Record<string, unknown> => b.broker.control.plugin('retainer')!.attrs;
  const deadline = Date.now() + 5000;
  while ((attrs()['write_errors'] as number) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(attrs()['write_errors']).toBeGreaterThan(0);
  expect(lines.some((l) => l.level === 50 && l.msg.includes('retained messages: write failed'))).toBe(true);
  await redis.start();
  const back = Date.now() + 15_000;
  while (!lines.some((l) => l.msg.includes('retained messages: store is back')) && Date.now() < back) await new Promise((r) => setTimeout(r, 50));
  expect(lines.some((l) => l.msg.includes('retained messages: store is back'))).toBe(true);
  await b.stop();
  b = await scope.broker({ plugins: [retainer], pluginsDir: dir });
  ({ client } = await RawClient.connect(b.port(), { protocolVersion: 5 }));
  clients.push(client);
  await client.subscribe({ filter: 'o/#', qos: 1 });
  const got = [await client.expect(3), await client.expect(3)].map((p) => [p.topic, p.payload.toString()]).sort();
  expect(got).toEqual([
    ['o/a', 'A'],
    ['o/b', 'B'],
  ]);
}, 60_000);
