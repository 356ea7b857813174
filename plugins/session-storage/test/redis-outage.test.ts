/**
 * Session storage on a real Redis that goes away mid-operation: the broker keeps serving (QoS 0,
 * clean sessions, pings), withholds the PUBACK of a message to a persistent session until it is
 * written, reports the outage in its log and metrics, and catches up when Redis is back — nothing it
 * acknowledged is lost, across a broker restart too.
 */
import { afterAll, afterEach, expect, it } from 'vitest';
import { RawClient, capturingLogger, ping, publishDone, startRedis, uniqueId, useTestScope, type RedisServer, type TestBroker } from '@rmqtt-ts/testkit';
import sessionStorage from '../src/index.js';

let redis: RedisServer | undefined;

afterAll(async () => {
  await redis?.destroy();
});
const scope = useTestScope();
// raw clients go before the brokers stop: vitest runs after-hooks last-registered first
const clients: RawClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
});

async function connect(b: TestBroker, clientId: string, persistent: boolean): Promise<{ c: RawClient; present: boolean }> {
  const { client, connack } = await RawClient.connect(b.port(), {
    protocolVersion: 5,
    clientId,
    cleanStart: !persistent,
    properties: persistent ? { sessionExpiryInterval: 3600 } : {},
  });
  clients.push(client);
  return { c: client, present: connack.sessionPresent };
}

it('Redis stopped and started again: serving goes on, acknowledgements wait, the outage is reported, nothing acknowledged is lost', async () => {
  redis = await startRedis();
  const plugins = scope.dir('rmqtt-session-redis-');
  const { logger, lines } = capturingLogger();
  let b = await scope.broker({
    plugins: [sessionStorage],
    pluginsDir: plugins,
    files: { 'rmqtt-session-storage.toml': `storage.type = "redis"\nstorage.redis.url = "${redis.url}"\nstorage.redis.prefix = "outage-{node}"\nbackend_timeout = "2s"\n` },
    logger,
  });

  const keeper = uniqueId('keeper');
  const k = await connect(b, keeper, true);
  await k.c.subscribe({ filter: 'o/#', qos: 1 });
  await k.c.disconnect();
  const watcher = await connect(b, uniqueId('watcher'), false);
  await watcher.c.subscribe({ filter: 'o/#', qos: 0 });
  const pub = await connect(b, uniqueId('pub'), false);
  expect((await publishDone(pub.c, 'o/1', 'before', { qos: 1 }))!.reasonCode).toBe(0);
  expect((await watcher.c.expect(3)).topic).toBe('o/1');

  await redis.stop();
  // QoS 0 goes on, and so does a clean session's traffic
  await publishDone(pub.c, 'o/q0', 'during', { qos: 0 });
  expect((await watcher.c.expect(3)).topic).toBe('o/q0');
  // a QoS 1 message for the persistent session: routed at once, acknowledged only once written
  pub.c.send({ type: 3, topic: 'o/2', payload: Buffer.from('held'), qos: 1, retain: false, dup: false, packetId: 42, properties: {} });
  expect((await watcher.c.expect(3)).topic).toBe('o/2');
  expect(await pub.c.expectSilence(1500)).toBe(true);
  // others are served meanwhile
  const other = await connect(b, uniqueId('other'), false);
  await ping(other.c);
  const stats = b.broker.metrics.stats();
  expect(stats['session_storage_down.count']).toBe(1);
  expect(b.broker.metrics.get('session.storage.errors')).toBeGreaterThan(0);
  expect(lines.some((l) => l.level === 50 && l.msg.includes('session store write failed'))).toBe(true);

  await redis.start();
  const ack = await pub.c.expect(4, 15_000);
  expect(ack).toMatchObject({ packetId: 42, reasonCode: 0 });
  expect(b.broker.metrics.stats()['session_storage_down.count']).toBe(0);
  expect(lines.some((l) => l.msg.includes('session store is back'))).toBe(true);

  // a restart over the same Redis: the persistent session gets everything, in order
  // stopped here and again after the test: Broker.stop runs once
  await b.stop();
  b = await scope.broker({ plugins: [sessionStorage], pluginsDir: plugins });
  const back = await connect(b, keeper, true);
  expect(back.present).toBe(true);
  const got: string[] = [];
  for (let i = 0; i < 3; i++) {
    const p = await back.c.expect(3).catch((e: Error) => { throw new Error(`${e.message}; got ${JSON.stringify(got)}`); });
    got.push(p.payload.toString());
    if (p.qos > 0) back.c.send({ type: 4, packetId: p.packetId!, reasonCode: 0, properties: {} });
  }
  expect(got).toEqual(['before', 'during', 'held']);
}, 60_000);
