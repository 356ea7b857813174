/**
 * Session storage through the broker, at the wire: persistent sessions, their queues and both
 * directions of QoS 2 survive a restart over the embedded store; expired and clean sessions do not;
 * a store that cannot be read stops start-up and is left as it was.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RawClient, publishDone, uniqueId, useTestScope, type PacketOf, type TestBroker } from '@rmqtt-ts/testkit';
import sessionStorage from '../src/index.js';

const RMQTT_TOML = '/work/shared/reference/rmqtt-configs/plugins/rmqtt-session-storage.toml';

const scope = useTestScope();
// raw clients go before the brokers stop: vitest runs after-hooks last-registered first
const clients: RawClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
});

/** A plugins dir whose session storage lives in a fresh temporary directory. */
function storageDir(extra = ''): { plugins: string; data: string } {
  const root = scope.dir('rmqtt-session-storage-');
  const plugins = join(root, 'plugins');
  mkdirSync(plugins);
  const data = join(root, 'data');
  writeFileSync(join(plugins, 'rmqtt-session-storage.toml'), `storage.type = "sled"\nstorage.sled.path = "${data}/{node}"\n${extra}`);
  return { plugins, data };
}

/** A broker stopped after the test (stopping it earlier, to restart, is fine: Broker.stop runs once). */
function broker(pluginsDir: string): Promise<TestBroker> {
  return scope.broker({ plugins: [sessionStorage], pluginsDir });
}

/** Stop the broker (as a restart would) and start another over the same store. */
async function restart(b: TestBroker, pluginsDir: string): Promise<TestBroker> {
  await b.stop();
  return broker(pluginsDir);
}

async function connect(b: TestBroker, clientId: string, o: { clean?: boolean; expiry?: number; version?: 4 | 5 } = {}): Promise<{ c: RawClient; connack: PacketOf<2> }> {
  const version = o.version ?? 5;
  const { client, connack } = await RawClient.connect(b.port(), {
    protocolVersion: version,
    clientId,
    cleanStart: o.clean ?? false,
    properties: version === 5 ? { sessionExpiryInterval: o.expiry ?? 3600 } : {},
  });
  clients.push(client);
  return { c: client, connack };
}

async function publisher(b: TestBroker): Promise<RawClient> {
  const { c } = await connect(b, uniqueId('pub'), { clean: true, expiry: 0 });
  return c;
}

describe('sessions survive a restart', () => {
  it('a persistent session comes back with its subscriptions and queued messages, in order (v5 and 3.1.1)', async () => {
    const { plugins } = storageDir();
    let b = await broker(plugins);
    for (const version of [5, 4] as const) {
      const id = uniqueId(`sub${version}`);
      const { c } = await connect(b, id, { version });
      await c.subscribe({ filter: `keep${version}/#`, qos: 2 });
      await c.disconnect();
      const p = await publisher(b);
      await publishDone(p, `keep${version}/1`, 'one', { qos: 1 });
      await publishDone(p, `keep${version}/2`, 'two', { qos: 2 });
      await publishDone(p, `keep${version}/3`, Buffer.from([0, 255, 1]), { qos: 1 });
      p.destroy();
    }
    b = await restart(b, plugins);
    // the restarted broker holds both sessions (offline); reconnect each
    const ids = [...b.broker.sessions.values()].map((s) => s.clientId).sort();
    expect(ids).toHaveLength(2);
    for (const clientId of ids) {
      const version = clientId.startsWith('sub5') ? 5 : 4;
      const { c, connack } = await connect(b, clientId, { version });
      expect(connack.sessionPresent).toBe(true);
      const got: PacketOf<3>[] = [];
      for (let i = 0; i < 3; i++) got.push(await c.expect(3));
      expect(got.map((p) => [p.topic, p.qos])).toEqual([
        [`keep${version}/1`, 1],
        [`keep${version}/2`, 2],
        [`keep${version}/3`, 1],
      ]);
      expect(got[2]!.payload).toEqual(Buffer.from([0, 255, 1]));
      // the subscription came back too: a new message arrives live
      const p = await publisher(b);
      await publishDone(p, `keep${version}/4`, 'live', { qos: 0 });
      const live = await c.expect(3);
      expect(live.topic).toBe(`keep${version}/4`);
    }
  });

  it('an unacknowledged QoS 1 delivery is sent again with DUP and the same packet id [MQTT-4.4.0-1]', async () => {
    const { plugins } = storageDir();
    let b = await broker(plugins);
    const id = uniqueId('dup');
    const { c } = await connect(b, id);
    await c.subscribe({ filter: 'dup/t', qos: 1 });
    const p = await publisher(b);
    await publishDone(p, 'dup/t', 'x', { qos: 1 });
    const first = await c.expect(3);
    expect(first.dup).toBe(false);
    c.destroy(); // no PUBACK
    b = await restart(b, plugins);
    const again = await connect(b, id);
    expect(again.connack.sessionPresent).toBe(true);
    const second = await again.c.expect(3);
    expect(second).toMatchObject({ topic: 'dup/t', dup: true, packetId: first.packetId, qos: 1 });
    again.c.send({ type: 4, packetId: second.packetId!, reasonCode: 0, properties: {} });
    expect(await again.c.expectSilence(300)).toBe(true);
  });

  it('outbound QoS 2 after PUBREC: a restart re-sends PUBREL, never the PUBLISH again', async () => {
    const { plugins } = storageDir();
    let b = await broker(plugins);
    const id = uniqueId('q2out');
    const { c } = await connect(b, id);
    await c.subscribe({ filter: 'q2/t', qos: 2 });
    const p = await publisher(b);
    await publishDone(p, 'q2/t', 'once', { qos: 2 });
    const pub = await c.expect(3);
    c.send({ type: 5, packetId: pub.packetId!, reasonCode: 0, properties: {} });
    const rel = await c.expect(6);
    expect(rel.packetId).toBe(pub.packetId);
    c.destroy(); // no PUBCOMP
    b = await restart(b, plugins);
    const again = await connect(b, id);
    const resent = await again.c.next();
    expect(resent).toMatchObject({ type: 6, packetId: pub.packetId });
    again.c.send({ type: 7, packetId: pub.packetId!, reasonCode: 0, properties: {} });
    expect(await again.c.expectSilence(300)).toBe(true);
  });

  it('inbound QoS 2: a PUBRECed packet id survives; the PUBLISH sent again is not routed twice [MQTT-4.3.3-10]', async () => {
    const { plugins } = storageDir();
    let b = await broker(plugins);
    const subId = uniqueId('q2sub');
    const sub = await connect(b, subId);
    await sub.c.subscribe({ filter: 'q2in/#', qos: 1 });
    const pubId = uniqueId('q2pub');
    const pub = await connect(b, pubId);
    pub.c.send({ type: 3, topic: 'q2in/x', payload: Buffer.from('m'), qos: 2, retain: false, dup: false, packetId: 77, properties: {} });
    expect((await pub.c.expect(5)).packetId).toBe(77);
    const delivered = await sub.c.expect(3);
    sub.c.send({ type: 4, packetId: delivered.packetId!, reasonCode: 0, properties: {} });
    pub.c.destroy(); // no PUBREL yet
    await new Promise((r) => setTimeout(r, 50));
    b = await restart(b, plugins);
    const sub2 = await connect(b, subId);
    const pub2 = await connect(b, pubId);
    expect(pub2.connack.sessionPresent).toBe(true);
    // the client, not knowing whether PUBREC arrived, sends the PUBLISH again with DUP
    pub2.c.send({ type: 3, topic: 'q2in/x', payload: Buffer.from('m'), qos: 2, retain: false, dup: true, packetId: 77, properties: {} });
    expect((await pub2.c.expect(5)).packetId).toBe(77);
    pub2.c.send({ type: 6, packetId: 77, reasonCode: 0, properties: {} });
    expect(await pub2.c.expect(7)).toMatchObject({ packetId: 77, reasonCode: 0 });
    expect(await sub2.c.expectSilence(400)).toBe(true);
    // the id is free again: a new message with it is routed
    await publishDone(pub2.c, 'q2in/y', 'n', { qos: 2, packetId: 77 });
    expect((await sub2.c.expect(3)).topic).toBe('q2in/y');
  });

  it('an expired session is not restored; a clean session is never stored', async () => {
    const { plugins } = storageDir();
    let b = await broker(plugins);
    const short = uniqueId('short');
    const s = await connect(b, short, { expiry: 1 });
    await s.c.subscribe({ filter: 'short/#', qos: 1 });
    await s.c.disconnect();
    const clean = await connect(b, uniqueId('clean'), { clean: true, expiry: 0 });
    await clean.c.subscribe({ filter: 'clean/#', qos: 1 });
    await b.stop();
    await new Promise((r) => setTimeout(r, 1200));
    b = await broker(plugins);
    // the expired one may come back for a moment as an offline session past its deadline: it ends at once
    await new Promise((r) => setTimeout(r, 100));
    expect([...b.broker.sessions.values()].map((x) => x.clientId)).toEqual([]);
    const again = await connect(b, short, { expiry: 1 });
    expect(again.connack.sessionPresent).toBe(false);
  });
});

describe('configuration and failures', () => {
  it('is immutable: it cannot be stopped or reloaded at run time', async () => {
    const { plugins } = storageDir();
    const b = await broker(plugins);
    await expect(b.broker.control.stopPlugin('session-storage')).rejects.toThrow(/immutable/);
    await expect(b.broker.control.reloadPlugin('session-storage')).rejects.toThrow(/immutable/);
  });

  it("RMQTT's rmqtt-session-storage.toml is accepted unchanged (its sled path moved by the environment)", async () => {
    const root = scope.dir('rmqtt-session-rmqtt-');
    const plugins = join(root, 'plugins');
    mkdirSync(plugins);
    writeFileSync(join(plugins, 'rmqtt-session-storage.toml'), readFileSync(RMQTT_TOML));
    process.env['RMQTT_PLUGIN_SESSION_STORAGE__STORAGE__SLED__PATH'] = join(root, 'data/{node}');
    try {
      const b = await broker(plugins);
      expect(b.broker.control.plugin('session-storage')?.attrs).toMatchObject({ storage: 'sled' });
      expect(readdirSync(join(root, 'data'))).toEqual([String(b.broker.nodeId)]);
    } finally {
      delete process.env['RMQTT_PLUGIN_SESSION_STORAGE__STORAGE__SLED__PATH'];
    }
  });

  it('a corrupt store stops start-up naming it, and nothing in it is changed', async () => {
    const { plugins, data } = storageDir();
    const b = await broker(plugins);
    const { c } = await connect(b, uniqueId('keep'));
    await c.subscribe({ filter: 'k/#', qos: 1 });
    await b.stop();
    const dir = join(data, String(b.broker.nodeId));
    // both meta pages and the first data pages overwritten
    writeFileSync(join(dir, 'data.mdb'), Buffer.alloc(64 * 1024, 0xab));
    const hashes = (): Record<string, string> =>
      Object.fromEntries(readdirSync(dir).map((f) => [f, createHash('sha1').update(readFileSync(join(dir, f))).digest('hex')]));
    const before = hashes();
    await expect(broker(plugins)).rejects.toThrow(new RegExp(`${dir.replaceAll('/', '\\/')}/data.mdb: not an LMDB data file, or both of its meta pages are damaged`));
    expect(hashes()).toEqual(before);
  });

  it('a store whose data pages are damaged (meta pages intact) is read through in a separate process first: start-up stops naming it', async () => {
    const { plugins, data } = storageDir();
    const b = await broker(plugins);
    for (let i = 0; i < 20; i++) {
      const { c } = await connect(b, uniqueId(`many${i}`));
      await c.subscribe({ filter: `k/${i}/#`, qos: 1 });
    }
    await b.stop();
    const file = join(data, String(b.broker.nodeId), 'data.mdb');
    const bytes = readFileSync(file);
    // everything after the two meta pages
    bytes.fill(0xab, 8192);
    writeFileSync(file, bytes);
    const before = createHash('sha1').update(readFileSync(file)).digest('hex');
    await expect(broker(plugins)).rejects.toThrow(new RegExp(`${file.replaceAll('/', '\\/')}: the store is damaged: reading it through in a separate process`));
    expect(createHash('sha1').update(readFileSync(file)).digest('hex')).toBe(before);
  });

  it('a store another running broker holds is refused naming its process; a lock left by a killed one is taken over', async () => {
    const { plugins, data } = storageDir();
    const b = await broker(plugins);
    await expect(broker(plugins)).rejects.toThrow(new RegExp(`in use by process ${process.pid}`));
    await b.stop();
    // a lock file whose process is gone (as after kill -9)
    writeFileSync(join(data, String(b.broker.nodeId), 'rmqtt.lock'), '999999\n');
    await broker(plugins);
  });

  it('a directory that is not a store is refused and left alone', async () => {
    const { plugins, data } = storageDir();
    const dir = join(data, '0');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    await expect(broker(plugins)).rejects.toThrow(/not an LMDB store/);
    expect(readdirSync(dir)).toEqual(['notes.txt']);
  });
});
