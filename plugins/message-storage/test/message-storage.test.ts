/**
 * Message storage through the broker, at the wire: stored messages reach a later subscription once,
 * never a session that had them, never a shared group that took them; retained and expired messages
 * are not replayed; the embedded store keeps them across a restart; with Redis killed mid-operation the
 * broker goes on and the writes land once Redis is back.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import retainer from '@rmqtt-ts/plugin-retainer';
import { RawClient, capturingLogger, publishDone, startRedis, uniqueId, useTestScope, type PacketOf, type TestBroker } from '@rmqtt-ts/testkit';
import messageStorage from '../src/index.js';

const RMQTT_TOML = '/work/shared/reference/rmqtt-configs/plugins/rmqtt-message-storage.toml';

const scope = useTestScope();
// raw clients go before the brokers stop: vitest runs after-hooks last-registered first
const clients: RawClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
});

function pluginsDir(toml: string): string {
  const dir = scope.dir('rmqtt-message-storage-');
  writeFileSync(join(dir, 'rmqtt-message-storage.toml'), toml.replaceAll('{dir}', dir));
  return dir;
}

/** A broker stopped after the test (stopping it earlier, to restart, is fine: Broker.stop runs once). */
function broker(dir: string, withRetainer = false): Promise<TestBroker> {
  return scope.broker({ plugins: withRetainer ? [messageStorage, retainer] : [messageStorage], pluginsDir: dir });
}

async function client(b: TestBroker, clientId = uniqueId('c')): Promise<RawClient> {
  const { client: c } = await RawClient.connect(b.port(), { protocolVersion: 5, clientId });
  clients.push(c);
  return c;
}

/** Everything that arrives within `ms`, acknowledged. */
async function drain(c: RawClient, ms = 300): Promise<PacketOf<3>[]> {
  const got: PacketOf<3>[] = [];
  for (;;) {
    const p = await c.next(ms).catch(() => null);
    if (p === null) return got;
    if (p.type !== 3) continue;
    got.push(p);
    if (p.qos === 1) c.send({ type: 4, packetId: p.packetId!, reasonCode: 0, properties: {} });
  }
}

const topicsOf = (ps: PacketOf<3>[]): string[] => ps.map((p) => p.topic);

describe('replay to later subscriptions', () => {
  it('a new subscription gets the stored messages it matches, oldest first, at the granted QoS', async () => {
    const b = await broker(pluginsDir('storage.type = "ram"\n'));
    const pub = await client(b);
    await publishDone(pub, 'h/1', 'one', { qos: 1 });
    await publishDone(pub, 'h/2', 'two', { qos: 2 });
    await publishDone(pub, 'other', 'x', { qos: 1 });
    const sub = await client(b);
    await sub.subscribe({ filter: 'h/#', qos: 1 });
    const got = await drain(sub);
    expect(got.map((p) => [p.topic, p.payload.toString(), p.qos])).toEqual([
      ['h/1', 'one', 1],
      ['h/2', 'two', 1],
    ]);
  });

  it('never twice to one session: not what it had live, not again for a subscription it already has', async () => {
    const b = await broker(pluginsDir('storage.type = "ram"\n'));
    const pub = await client(b);
    const sub = await client(b);
    await sub.subscribe({ filter: 'd/a', qos: 1 });
    await publishDone(pub, 'd/a', 'live', { qos: 1 });
    await publishDone(pub, 'd/b', 'missed', { qos: 1 });
    expect(topicsOf(await drain(sub))).toEqual(['d/a']);
    await sub.subscribe({ filter: 'd/+', qos: 1 });
    expect(topicsOf(await drain(sub))).toEqual(['d/b']);
    // the same filter again: an existing subscription replays nothing; a third overlapping one neither
    await sub.subscribe({ filter: 'd/+', qos: 1 });
    await sub.subscribe({ filter: 'd/#', qos: 1 });
    expect(await drain(sub)).toEqual([]);
  });

  it('shared groups: a group that took a message does not get it again; another group does', async () => {
    const b = await broker(pluginsDir('storage.type = "ram"\n'));
    const pub = await client(b);
    const a = await client(b);
    await a.subscribe({ filter: '$share/g/s/#', qos: 1 });
    await publishDone(pub, 's/1', 'x', { qos: 1 });
    expect(topicsOf(await drain(a))).toEqual(['s/1']);
    const bMember = await client(b);
    await bMember.subscribe({ filter: '$share/g/s/#', qos: 1 });
    expect(await drain(bMember)).toEqual([]);
    const h = await client(b);
    await h.subscribe({ filter: '$share/h/s/#', qos: 1 });
    expect(topicsOf(await drain(h))).toEqual(['s/1']);
    // the group h has it now: its next member gets nothing
    const h2 = await client(b);
    await h2.subscribe({ filter: '$share/h/s/#', qos: 1 });
    expect(await drain(h2)).toEqual([]);
  });

  it('retained messages come from the retainer only (once); expired messages are not replayed', async () => {
    const b = await broker(pluginsDir('storage.type = "ram"\n'), true);
    const pub = await client(b);
    await publishDone(pub, 'rt/1', 'kept', { qos: 1, retain: true });
    await publishDone(pub, 'rt/2', 'brief', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await new Promise((r) => setTimeout(r, 1100));
    const sub = await client(b);
    await sub.subscribe({ filter: 'rt/#', qos: 1 });
    const got = await drain(sub);
    expect(got.map((p) => [p.topic, p.retain])).toEqual([['rt/1', true]]);
  });
});

describe('storage types', () => {
  it('the embedded store keeps the messages across a restart', async () => {
    const dir = pluginsDir('storage.type = "sled"\nstorage.sled.path = "{dir}/data/{node}"\n');
    let b = await broker(dir);
    const pub = await client(b);
    const had = await client(b, 'had-it');
    await had.subscribe({ filter: 'k/#', qos: 1 });
    await publishDone(pub, 'k/1', 'survives', { qos: 1 });
    expect(topicsOf(await drain(had))).toEqual(['k/1']);
    await b.stop();
    b = await broker(dir);
    const sub = await client(b);
    await sub.subscribe({ filter: 'k/#', qos: 1 });
    expect((await drain(sub)).map((p) => p.payload.toString())).toEqual(['survives']);
    expect(b.broker.control.plugin('message-storage')?.attrs).toMatchObject({ storage: 'sled', messages: 1 });
  });

  it("is immutable; RMQTT's rmqtt-message-storage.toml is accepted unchanged", async () => {
    const dir = scope.dir('rmqtt-message-rmqtt-');
    mkdirSync(join(dir, 'p'));
    writeFileSync(join(dir, 'p', 'rmqtt-message-storage.toml'), readFileSync(RMQTT_TOML));
    const b = await broker(join(dir, 'p'));
    expect(b.broker.control.plugin('message-storage')?.attrs).toMatchObject({ storage: 'ram' });
    await expect(b.broker.control.stopPlugin('message-storage')).rejects.toThrow(/immutable/);
  });
});

describe('Redis away', () => {
  it('storage.type = "redis" with Redis killed and restarted: publishes go on, the writes are retried and land, the replay after a restart has everything', async () => {
    const redis = await startRedis();
    try {
      const dir = pluginsDir(`storage.type = "redis"\nstorage.redis.url = "${redis.url}"\nstorage.redis.prefix = "outage"\nbackend_timeout = "2s"\n`);
      const { logger, lines } = capturingLogger();
      let b = await scope.broker({ plugins: [messageStorage], pluginsDir: dir, logger });
      const pub = await client(b);
      await publishDone(pub, 'm/a', 'before', { qos: 1 });
      await redis.stop();
      // acknowledged at once: stored messages are written behind
      await publishDone(pub, 'm/b', 'during', { qos: 1 });
      const attrs = (): Record<string, unknown> => b.broker.control.plugin('message-storage')!.attrs;
      await expect.poll(() => attrs()['write_errors'] as number, { timeout: 5000 }).toBeGreaterThan(0);
      expect(lines.some((l) => l.level === 50 && l.msg.includes('message storage: write failed'))).toBe(true);
      // the broker serves meanwhile
      const live = await client(b);
      await live.subscribe({ filter: 'live/#', qos: 1 });
      await publishDone(pub, 'live/x', 'fine', { qos: 1 });
      expect((await live.expect(3)).payload.toString()).toBe('fine');
      await redis.start();
      await expect.poll(() => lines.some((l) => l.msg.includes('message storage: store is back')), { timeout: 15_000 }).toBe(true);
      await b.stop();
      b = await scope.broker({ plugins: [messageStorage], pluginsDir: dir });
      const sub = await client(b);
      await sub.subscribe({ filter: 'm/#', qos: 1 });
      expect((await drain(sub)).map((p) => p.payload.toString())).toEqual(['before', 'during']);
    } finally {
      await redis.destroy();
    }
  }, 60_000);
});
