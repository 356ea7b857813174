/**
 * The egress bridge against a real mosquitto (started here on free ports): QoS 0/1/2 over MQTT 3.1.1 and
 * 5, topic templates, skipped levels, retain and QoS mapping, MQTT 5 properties, TLS with client
 * certificates, credentials from the environment, wrong addresses and credentials (logged, retried, the
 * broker unaffected), the bounded channel on both sides of its capacity across a remote restart, and a
 * hot stop/start over the HTTP API.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RawClient,
  RawServer,
  bridgeTable,
  capturingLogger,
  connectClient,
  endClient,
  makePki,
  recorder,
  startMosquitto,
  uniqueId,
  useTestScope,
  type MosquittoServer,
  type Pki,
  type TestBroker,
} from '@rmqtt-ts/testkit';
import httpApi from '@rmqtt-ts/plugin-http-api';
import retainer from '@rmqtt-ts/plugin-retainer';
import egress from '../src/index.js';

const RMQTT_EGRESS = '/work/shared/reference/rmqtt-configs/plugins/rmqtt-bridge-egress-mqtt.toml';

let pki: Pki;
let mosq: MosquittoServer;
const scope = useTestScope();

beforeAll(async () => {
  pki = makePki();
  mosq = await startMosquitto({ tls: pki, requireClientCert: true, users: { bridge: 'secret', reader: 'reader' } });
});
afterAll(async () => {
  await mosq?.destroy();
  pki?.remove();
});

async function broker(toml: string, options: { logger?: ReturnType<typeof capturingLogger>['logger']; api?: boolean; retain?: boolean } = {}): Promise<TestBroker> {
  const files: Record<string, string> = { 'rmqtt-bridge-egress-mqtt.toml': toml };
  if (options.api === true) files['rmqtt-http-api.toml'] = 'http_laddr = "127.0.0.1:0"\n';
  return scope.broker({
    config: { 'node.id': 1 },
    plugins: [egress, ...(options.api === true ? [httpApi] : []), ...(options.retain === true ? [retainer] : [])],
    files,
    logger: options.logger,
  });
}

const client = (url: string, options: Parameters<typeof connectClient>[1] = {}): Promise<MqttClient> => scope.client(url, options);

/** A reader on mosquitto subscribed to `filter`. */
async function remoteReader(filter: string, options: Parameters<typeof connectClient>[1] = {}, qos: 0 | 1 | 2 = 2) {
  const c = await client(mosq.url, { username: 'reader', password: 'reader', ...options });
  const rec = recorder(c);
  await c.subscribeAsync(filter, { qos });
  return { c, rec };
}

interface Attrs {
  forwarded: number;
  dropped: number;
  skipped_bridged: number;
  bridges: Array<{ name: string; entry_idx: number; client_id: string; connected: boolean; waiting: number; in_flight: number; sent: number; connects: number; failures: number; last_error: string | null }>;
}

function attrs(b: TestBroker): Attrs {
  return b.broker.control.plugin('bridge-egress-mqtt')!.attrs as unknown as Attrs;
}

async function allConnected(b: TestBroker): Promise<void> {
  await expect.poll(() => attrs(b).bridges.every((x) => x.connected), { timeout: 10_000 }).toBe(true);
}

/** A bridge table to the test mosquitto (plain TCP, user "bridge"); `keys` add or replace keys. */
function bridgeToml(name: string, ver: 'v4' | 'v5', entries: string, keys: Record<string, string> = {}): string {
  return bridgeTable({ name: `"${name}"`, server: `"tcp://127.0.0.1:${mosq.port}"`, username: '"bridge"', password: '"secret"', mqtt_ver: `"${ver}"`, ...keys }, entries);
}

function entry(filter: string, topic: string, more = ''): string {
  return `[[bridges.entries]]\nlocal.topic_filter = "${filter}"\nremote.topic = "${topic}"\n${more}\n`;
}

describe('forwarding to mosquitto', () => {
  for (const ver of ['v4', 'v5'] as const) {
    it(`QoS 0, 1 and 2 keep their QoS (${ver}); the topic is mapped; local delivery is unchanged`, async () => {
      const tag = uniqueId('q');
      const b = await broker(bridgeToml(`b-${ver}`, ver, entry(`${tag}/#`, `cloud/\${local.topic}`)));
      await allConnected(b);
      const { rec } = await remoteReader(`cloud/${tag}/#`);
      const local = await client(b.url(), { protocolVersion: ver === 'v5' ? 5 : 4 });
      const localRec = recorder(local);
      await local.subscribeAsync(`${tag}/#`, { qos: 2 });
      for (const qos of [0, 1, 2] as const) await local.publishAsync(`${tag}/q${qos}`, `m${qos}`, { qos });
      const got = await rec.waitFor(3, 5000);
      expect(got.map((m) => [m.topic, m.payload.toString(), m.packet.qos])).toEqual([
        [`cloud/${tag}/q0`, 'm0', 0],
        [`cloud/${tag}/q1`, 'm1', 1],
        [`cloud/${tag}/q2`, 'm2', 2],
      ]);
      expect((await localRec.waitFor(3)).map((m) => m.topic)).toEqual([`${tag}/q0`, `${tag}/q1`, `${tag}/q2`]);
      expect(attrs(b).bridges[0]!.client_id).toBe(`edge:b-${ver}:egress:1:0:0`);
      await expect.poll(() => attrs(b).bridges[0]!.sent).toBe(3);
      expect(b.broker.metrics.metrics()['bridge_egress_mqtt.forwarded']).toBe(3);
    });
  }

  it('remote.qos and remote.retain override the message; unset they follow it', async () => {
    const tag = uniqueId('map');
    const b = await broker(
      bridgeToml('map', 'v4', entry(`${tag}/forced/#`, `cloud/\${local.topic}`, 'remote.qos = 0\nremote.retain = true') + entry(`${tag}/follow/#`, `cloud/\${local.topic}`)),
      { retain: true },
    );
    await allConnected(b);
    const local = await client(b.url());
    await local.publishAsync(`${tag}/forced/a`, 'f', { qos: 2, retain: false });
    await local.publishAsync(`${tag}/follow/r`, 'kept', { qos: 1, retain: true });
    await local.publishAsync(`${tag}/follow/n`, 'plain', { qos: 1, retain: false });
    await expect.poll(() => attrs(b).bridges.reduce((n, x) => n + x.sent, 0)).toBe(3);
    // a reader arriving now gets what mosquitto retained: the forced one and the one retained locally
    const { rec } = await remoteReader(`cloud/${tag}/#`);
    const got = await rec.waitFor(2, 5000);
    expect(got.map((m) => [m.topic, m.payload.toString(), m.packet.retain, m.packet.qos]).sort()).toEqual([
      [`cloud/${tag}/follow/r`, 'kept', true, 1],
      [`cloud/${tag}/forced/a`, 'f', true, 0],
    ]);
  });

  it('skip_levels drops leading levels from ${local.topic}; a template without it is a fixed topic', async () => {
    const tag = uniqueId('skip');
    const b = await broker(
      bridgeToml('skip', 'v4', entry(`${tag}/dev/+/temp`, `up/\${local.topic}/x`, 'remote.skip_levels = 2') + entry(`${tag}/fixed/#`, `all/${tag}/one`)),
    );
    await allConnected(b);
    const { rec } = await remoteReader(`up/#`);
    const fixed = await remoteReader(`all/${tag}/one`);
    const local = await client(b.url());
    await local.publishAsync(`${tag}/dev/7/temp`, '21', { qos: 1 });
    await local.publishAsync(`${tag}/fixed/a/b`, 'one', { qos: 1 });
    expect((await rec.next(5000)).topic).toBe('up/7/temp/x');
    expect((await fixed.rec.next(5000)).payload.toString()).toBe('one');
  });

  it('a message matching several entries goes out once per entry, each through its own client', async () => {
    const tag = uniqueId('multi');
    const b = await broker(bridgeToml('multi', 'v4', entry(`${tag}/#`, `a/\${local.topic}`) + entry(`${tag}/x`, `b/\${local.topic}`), { concurrent_client_limit: '2' }));
    await allConnected(b);
    expect(attrs(b).bridges.map((x) => x.client_id).sort()).toEqual(['edge:multi:egress:1:0:0', 'edge:multi:egress:1:0:1', 'edge:multi:egress:1:1:0', 'edge:multi:egress:1:1:1']);
    const { rec } = await remoteReader(`+/${tag}/#`);
    const local = await client(b.url());
    await local.publishAsync(`${tag}/x`, 'both', { qos: 1 });
    const got = await rec.waitFor(2, 5000);
    expect(got.map((m) => m.topic).sort()).toEqual([`a/${tag}/x`, `b/${tag}/x`]);
  });

  it('one topic always leaves through the same client, so its messages keep their order', async () => {
    const tag = uniqueId('order');
    const b = await broker(bridgeToml('order', 'v4', entry(`${tag}/#`, `o/\${local.topic}`), { concurrent_client_limit: '4' }));
    await allConnected(b);
    const { rec } = await remoteReader(`o/${tag}/#`, {}, 1);
    const local = await client(b.url());
    const topics = [`${tag}/a`, `${tag}/b`, `${tag}/c`];
    for (let i = 0; i < 60; i++) local.publish(topics[i % 3]!, String(i), { qos: 1 });
    const got = await rec.waitFor(60, 10_000);
    for (const t of topics) {
      const seq = got.filter((m) => m.topic === `o/${t}`).map((m) => Number(m.payload.toString()));
      expect(seq).toEqual([...seq].sort((x, y) => x - y));
      expect(seq).toHaveLength(20);
    }
  });

  it('MQTT 5 properties pass through (user properties, content type, response topic, correlation data, expiry)', async () => {
    const tag = uniqueId('props');
    const b = await broker(bridgeToml('props', 'v5', entry(`${tag}/#`, `p/\${local.topic}`)));
    await allConnected(b);
    const { rec } = await remoteReader(`p/${tag}/#`, { protocolVersion: 5 });
    const local = await client(b.url(), { protocolVersion: 5 });
    await local.publishAsync(`${tag}/x`, '{"a":1}', {
      qos: 1,
      properties: {
        payloadFormatIndicator: true,
        contentType: 'application/json',
        responseTopic: 'reply/here',
        correlationData: Buffer.from('c-1'),
        messageExpiryInterval: 300,
        userProperties: { k: ['v1', 'v2'], other: 'x' },
      },
    });
    const m = await rec.next(5000);
    const p = m.packet.properties!;
    expect(p.contentType).toBe('application/json');
    expect(p.responseTopic).toBe('reply/here');
    expect(p.correlationData?.toString()).toBe('c-1');
    expect(p.payloadFormatIndicator).toBe(true);
    expect(p.messageExpiryInterval).toBeGreaterThan(290);
    expect(p.messageExpiryInterval).toBeLessThanOrEqual(300);
    expect(p.userProperties).toEqual({ k: ['v1', 'v2'], other: 'x' });
  });

  it('the last will of the config is published by the remote when a bridge connection dies, not when the plugin stops', async () => {
    const tag = uniqueId('will');
    const will = `{ qos = 1, retain = false, topic = "wills/${tag}", message = "Ym9vbQ==", encoding = "base64" }`;
    const b = await broker(bridgeToml('will', 'v4', entry(`${tag}/#`, `w/\${local.topic}`), { 'v4.last_will': will }), { api: false });
    await allConnected(b);
    const { rec } = await remoteReader(`wills/${tag}`);
    // an intruder with the bridge's client id takes its session over: its connection ends uncleanly
    const intruder = await client(mosq.url, { clientId: 'edge:will:egress:1:0:0', username: 'reader', password: 'reader' });
    expect((await rec.next(5000)).payload.toString()).toBe('boom');
    await endClient(intruder, true);
    await expect.poll(() => attrs(b).bridges[0]!.connected, { timeout: 10_000 }).toBe(true);
    // a stop disconnects cleanly: no will
    expect(await b.broker.control.stopPlugin('bridge-egress-mqtt')).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(rec.messages).toHaveLength(1);
  });
});

describe('connections', () => {
  it('TLS with a root certificate and a client certificate; credentials from ${ENV:…}', async () => {
    process.env['EGRESS_TEST_USER'] = 'bridge';
    process.env['EGRESS_TEST_PASS'] = 'secret';
    const tag = uniqueId('tls');
    const b = await broker(
      bridgeToml('tls', 'v5', entry(`${tag}/#`, `t/\${local.topic}`), {
        server: `"tls://127.0.0.1:${mosq.tlsPort}"`,
        root_cert: `"${pki.caPath}"`,
        client_cert: `"${pki.client.certPath}"`,
        client_key: `"${pki.client.keyPath}"`,
        username: '"${ENV:EGRESS_TEST_USER}"',
        password: '"${ENV:EGRESS_TEST_PASS}"',
      }),
    );
    await allConnected(b);
    const { rec } = await remoteReader(`t/${tag}/#`);
    const local = await client(b.url());
    await local.publishAsync(`${tag}/secure`, 'over tls', { qos: 1 });
    expect((await rec.next(5000)).payload.toString()).toBe('over tls');
    // the config as shown keeps the password hidden
    const shown = b.broker.control.pluginConfig('bridge-egress-mqtt') as { bridges: Array<Record<string, unknown>> };
    expect(shown.bridges[0]!['password']).toBe('******');
  });

  const failing: Array<[string, Record<string, string>, RegExp]> = [
    ['a wrong password', { password: '"wrong"' }, /not authorized|bad user name or password/i],
    ['nothing listening at the address', { server: '"tcp://127.0.0.1:1"' }, /ECONNREFUSED/],
    ['a server certificate from an unknown CA', { server: '"tls://127.0.0.1:TLSPORT"', client_cert: '"CLIENTCERT"', client_key: '"CLIENTKEY"' }, /self[- ]signed|unable to (get|verify)|certificate/i],
  ];
  for (const [what, keys, error] of failing) {
    it(`${what}: logged, retried, and the broker carries on`, async () => {
      const tag = uniqueId('fail');
      const cap = capturingLogger();
      const fixed = Object.fromEntries(
        Object.entries(keys).map(([k, v]) => [k, v.replace('TLSPORT', String(mosq.tlsPort)).replace('CLIENTCERT', pki.client.certPath).replace('CLIENTKEY', pki.client.keyPath)]),
      );
      const b = await broker(bridgeToml('fail', 'v4', entry(`${tag}/#`, `f/\${local.topic}`), fixed), { logger: cap.logger });
      // retried: several attempts, reported once (the same error is not repeated in the log)
      await expect.poll(() => attrs(b).bridges[0]!.last_error ?? '', { timeout: 5000 }).toMatch(error);
      const failures = () => cap.lines.filter((l) => l.msg === 'bridge connection failed; retrying');
      expect(failures().length).toBeGreaterThanOrEqual(1);
      expect(String(failures()[0]!['error'])).toMatch(error);
      expect(failures()[0]!['client_id']).toBe('edge:fail:egress:1:0:0');
      await expect.poll(() => attrs(b).bridges[0]!.failures, { timeout: 5000 }).toBeGreaterThanOrEqual(3);
      expect(failures()).toHaveLength(1);
      // the broker: local publish and subscribe work as ever
      const local = await client(b.url());
      const rec = recorder(local);
      await local.subscribeAsync(`${tag}/#`, { qos: 1 });
      for (let i = 0; i < 5; i++) await local.publishAsync(`${tag}/x`, String(i), { qos: 1 });
      expect(await rec.waitFor(5)).toHaveLength(5);
      expect(attrs(b).bridges[0]!.connected).toBe(false);
    });
  }

  it('the shipped config loads; its bridge is disabled until set up, and the log says so', async () => {
    const { readFileSync } = await import('node:fs');
    const cap = capturingLogger();
    const b = await broker(readFileSync(new URL('../../../configs/plugins/rmqtt-bridge-egress-mqtt.toml', import.meta.url), 'utf8'), { logger: cap.logger });
    expect(attrs(b).bridges).toHaveLength(0);
    expect(cap.lines.some((l) => l.msg.startsWith('no bridge is enabled'))).toBe(true);
  });

  it("RMQTT's own rmqtt-bridge-egress-mqtt.toml loads unchanged: its enabled bridge's clients, named as RMQTT names them", async () => {
    const { readFileSync } = await import('node:fs');
    const b = await broker(readFileSync(RMQTT_EGRESS, 'utf8'));
    const ids = attrs(b).bridges.map((x) => x.client_id);
    // bridge_name_1: 3 entries × 5 clients; bridge_name_2 is disabled
    expect(ids).toHaveLength(15);
    expect(ids).toContain('prefix:bridge_name_1:egress:1:0:0');
    expect(ids).toContain('prefix:bridge_name_1:egress:1:2:4');
    expect(ids.some((id) => id.includes('bridge_name_2'))).toBe(false);
  });
});

describe('config errors stop start-up naming the file, the key and what was expected', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['a QoS of 3', entry('a/#', 'b') + 'remote.qos = 3\n', /rmqtt-bridge-egress-mqtt\.toml: bridges: \[0\]\.entries\[0\]\.remote\.qos: expected 0, 1 or 2, got 3/],
    ['an unknown key', entry('a/#', 'b') + 'remote.qoss = 1\n', /bridges: \[0\]\.entries\[0\]\.remote\.qoss: unknown key/],
    ['a bad topic filter', entry('a/#/b', 'b'), /bridges: \[0\]\.entries\[0\]\.local\.topic_filter: expected a topic filter/],
    ['a wildcard in the remote topic', entry('a/#', 'b/+'), /bridges: \[0\]\.entries\[0\]\.remote\.topic: expected a topic name/],
  ];
  for (const [what, entries, message] of cases) {
    it(what, async () => {
      await expect(broker(bridgeToml('bad', 'v4', entries))).rejects.toThrow(message);
    });
  }
  it('an unset environment variable', async () => {
    await expect(broker(bridgeToml('bad', 'v4', entry('a/#', 'b'), { password: '"${ENV:RMQTT_NOT_SET_ANYWHERE}"' }))).rejects.toThrow(
      /bridges: \[0\]\.password: environment variable RMQTT_NOT_SET_ANYWHERE is not set/,
    );
  });
  it('a bad duration, server and version', async () => {
    await expect(broker(bridgeToml('bad', 'v4', '', { keepalive: '"soon"' }))).rejects.toThrow(/\[0\]\.keepalive: expected a duration/);
    await expect(broker(bridgeToml('bad', 'v4', '', { server: '"http://x:1"' }))).rejects.toThrow(/\[0\]\.server: expected an address such as "tcp:\/\/127\.0\.0\.1:1883"/);
    await expect(broker(bridgeToml('bad', 'v4', '', { mqtt_ver: '"v6"' }))).rejects.toThrow(/\[0\]\.mqtt_ver: expected one of "v3", "v4", "v5"/);
  });
  it('two enabled bridges with one name', async () => {
    const t = bridgeToml('same', 'v4', '');
    await expect(broker(`${t}\n${t}`)).rejects.toThrow(/\[1\]\.name: expected a name no other enabled bridge has, got "same"/);
  });
  it('a bad value elsewhere in a bridge never shows its password', async () => {
    const err = await broker(bridgeToml('bad', 'v4', '', { password: '"hunter2-secret"', keepalive: '"soon"' })).catch((e: Error) => e);
    expect(String(err)).toMatch(/\[0\]\.keepalive: expected a duration/);
    expect(String(err)).not.toContain('hunter2-secret');
  });
  it('durations that would switch retrying or keep alive off by accident', async () => {
    await expect(broker(bridgeToml('bad', 'v4', '', { reconnect_interval: '"0s"' }))).rejects.toThrow(/\[0\]\.reconnect_interval: expected a duration of at least 1ms/);
    await expect(broker(bridgeToml('bad', 'v4', '', { connect_timeout: '0' }))).rejects.toThrow(/\[0\]\.connect_timeout: expected a duration of at least 1ms/);
    await expect(broker(bridgeToml('bad', 'v4', '', { keepalive: '"500ms"' }))).rejects.toThrow(/\[0\]\.keepalive: expected 0 \(off\) or at least 1s/);
  });
  it('TLS files with a tcp:// server', async () => {
    await expect(broker(bridgeToml('bad', 'v4', '', { root_cert: `"${pki.caPath}"` }))).rejects.toThrow(/\[0\]\.root_cert: expected a tls:\/\/ server for TLS files/);
  });
  it('a TLS file that cannot be read', async () => {
    await expect(broker(bridgeToml('bad', 'v4', '', { root_cert: '"/nonexistent/root.pem"' }))).rejects.toThrow(/\[0\]\.root_cert: cannot read "\/nonexistent\/root\.pem"/);
  });
});

describe('a remote restart mid-stream (QoS 1, at least once within message_channel_capacity)', () => {
  let durable: MosquittoServer;
  beforeAll(async () => {
    durable = await startMosquitto({ persistence: true });
  });
  afterAll(async () => {
    await durable?.destroy();
  });

  /** A subscriber on the durable mosquitto that keeps its session and reconnects by itself. */
  async function durableReader(filter: string): Promise<{ payloads: () => Set<string>; count: () => number }> {
    const id = uniqueId('reader');
    const c = mqtt.connect(durable.url, { clientId: id, clean: false, reconnectPeriod: 100, connectTimeout: 2000 });
    scope.endAfterEach(c);
    const got: string[] = [];
    c.on('message', (_t, payload) => got.push(payload.toString()));
    await new Promise<void>((resolve) => c.once('connect', () => resolve()));
    await c.subscribeAsync(filter, { qos: 1 });
    return { payloads: () => new Set(got), count: () => got.length };
  }

  function toDurable(tag: string, capacity: number): string {
    return bridgeToml('durable', 'v4', entry(`${tag}/#`, `d/\${local.topic}`, 'remote.qos = 1'), {
      server: `"tcp://127.0.0.1:${durable.port}"`,
      username: '"x"',
      password: '"x"',
      message_channel_capacity: String(capacity),
      reconnect_interval: '"100ms"',
    });
  }

  it('messages published while the remote restarts all arrive', async () => {
    const tag = uniqueId('restart');
    const reader = await durableReader(`d/${tag}/#`);
    const b = await broker(toDurable(tag, 10_000));
    await allConnected(b);
    const local = await client(b.url());
    const N = 300;
    for (let i = 0; i < N; i++) {
      await local.publishAsync(`${tag}/m`, String(i), { qos: 1 });
      if (i === 100) await durable.stop();
      if (i === 200) await durable.start();
      else await new Promise((r) => setTimeout(r, 2));
    }
    await expect.poll(() => reader.payloads().size, { timeout: 15_000 }).toBe(N);
    expect(b.broker.metrics.metrics()['bridge_egress_mqtt.dropped'] ?? 0).toBe(0);
    expect(attrs(b).bridges[0]!.connects).toBe(2);
  });

  it('beyond the capacity while the remote is away: the first ones are kept and sent, the rest dropped, counted and logged', async () => {
    const tag = uniqueId('bound');
    const reader = await durableReader(`d/${tag}/#`);
    const cap = capturingLogger();
    const b = await broker(toDurable(tag, 20), { logger: cap.logger });
    await allConnected(b);
    await durable.stop();
    await expect.poll(() => attrs(b).bridges[0]!.connected).toBe(false);
    const local = await client(b.url());
    for (let i = 0; i < 50; i++) await local.publishAsync(`${tag}/m`, String(i), { qos: 1 });
    expect(attrs(b).bridges[0]!.waiting).toBe(20);
    expect(b.broker.metrics.metrics()['bridge_egress_mqtt.dropped']).toBe(30);
    expect(attrs(b).dropped).toBe(30);
    expect(cap.lines.some((l) => l.msg === 'bridge messages dropped' && l['reason'] === 'channel full')).toBe(true);
    await durable.start();
    await expect.poll(() => reader.count(), { timeout: 15_000 }).toBe(20);
    await new Promise((r) => setTimeout(r, 300));
    expect([...reader.payloads()].map(Number).sort((x, y) => x - y)).toEqual([...Array(20).keys()]);
  });
});

describe('at the wire (the test plays the remote broker)', () => {
  async function remote(): Promise<RawServer> {
    return scope.closeAfterEach(await RawServer.start(4));
  }

  /** Accept the bridge's next connection and CONNACK it. */
  async function accept(server: RawServer): Promise<RawClient> {
    const p = await server.next();
    await p.expect(1);
    p.send({ type: 2, sessionPresent: false, reasonCode: 0, properties: {} });
    return p;
  }

  it('a QoS 1 message whose PUBACK never came is sent again, DUP set, on the next connection', async () => {
    const server = await remote();
    const tag = uniqueId('dup');
    const b = await broker(bridgeToml('dup', 'v4', entry(`${tag}/#`, `\${local.topic}`), { server: `"tcp://127.0.0.1:${server.port}"`, reconnect_interval: '"100ms"' }));
    const first = await accept(server);
    await allConnected(b);
    const local = await client(b.url());
    await local.publishAsync(`${tag}/x`, 'must arrive', { qos: 1 });
    const sent = await first.expect(3);
    expect(sent).toMatchObject({ topic: `${tag}/x`, qos: 1, dup: false });
    // the connection drops before the PUBACK
    first.socket.destroy();
    const second = await accept(server);
    const again = await second.expect(3);
    expect(again).toMatchObject({ topic: `${tag}/x`, qos: 1, dup: true, packetId: sent.packetId });
    expect(again.payload.toString()).toBe('must arrive');
    second.send({ type: 4, packetId: again.packetId!, reasonCode: 0, properties: {} });
    await expect.poll(() => attrs(b).bridges[0]!.sent).toBe(1);
    expect(attrs(b).bridges[0]!.in_flight).toBe(0);
  });

  it('QoS 0: at most 64 messages wait in mqtt.js for a full socket, the rest in the channel; after the connection drops, forwarding resumes', async () => {
    const server = await remote();
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const tag = uniqueId('stuck');
      const b = await broker(bridgeToml('stuck', 'v4', entry(`${tag}/#`, `\${local.topic}`), { server: `"tcp://127.0.0.1:${server.port}"`, reconnect_interval: '"100ms"' }));
      const stuck = await accept(server);
      await allConnected(b);
      // from now on nothing is read: the bridge's socket fills up
      stuck.socket.pause();
      const local = await client(b.url());
      const payload = Buffer.alloc(2048, 7);
      for (let i = 0; i < 10_000; i++) local.publish(`${tag}/x`, payload, { qos: 0 });
      await local.publishAsync(`${tag}/end`, payload, { qos: 1 });
      await expect.poll(() => attrs(b).bridges[0]!.waiting, { timeout: 10_000 }).toBeGreaterThan(0);
      expect(attrs(b).bridges[0]!.in_flight).toBeLessThanOrEqual(64);
      expect(attrs(b).forwarded).toBe(10_001);
      expect(warnings).not.toContain('MaxListenersExceededWarning');
      // the broker itself is unaffected
      const rec = recorder(local);
      await local.subscribeAsync(`${tag}/#`, { qos: 1 });
      await local.publishAsync(`${tag}/still`, 'fine', { qos: 1 });
      expect((await rec.next()).payload.toString()).toBe('fine');
      // the stuck connection drops; the next one reads: what waited, and what comes now, goes out
      stuck.socket.destroy();
      const fresh = await accept(server);
      await local.publishAsync(`${tag}/after`, 'after', { qos: 0 });
      for (;;) {
        const p = await fresh.expect(3, 10_000);
        if (p.qos > 0) fresh.send({ type: 4, packetId: p.packetId!, reasonCode: 0, properties: {} });
        if (p.topic === `${tag}/after`) break;
      }
      await expect.poll(() => attrs(b).bridges[0]!.waiting).toBe(0);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('hot stop and start over the HTTP API', () => {
  async function api(b: TestBroker, path: string): Promise<{ status: number; body: unknown }> {
    const attrsApi = b.broker.control.plugin('http-api')!.attrs as { http_laddr: string };
    const res = await fetch(`http://${attrsApi.http_laddr}/api/v1${path}`, { method: 'PUT' });
    return { status: res.status, body: await res.json().catch(() => null) };
  }

  it('unload closes the bridge clients and stops forwarding; load connects them again', async () => {
    const tag = uniqueId('hot');
    const b = await broker(bridgeToml('hot', 'v4', entry(`${tag}/#`, `h/\${local.topic}`)), { api: true });
    await allConnected(b);
    const { rec } = await remoteReader(`h/${tag}/#`);
    const local = await client(b.url());
    await local.publishAsync(`${tag}/1`, 'before', { qos: 1 });
    expect((await rec.next(5000)).payload.toString()).toBe('before');

    expect((await api(b, '/plugins/1/bridge-egress-mqtt/unload')).status).toBe(200);
    expect(b.broker.control.plugin('bridge-egress-mqtt')!.active).toBe(false);
    await local.publishAsync(`${tag}/2`, 'while stopped', { qos: 1 });

    expect((await api(b, '/plugins/1/bridge-egress-mqtt/load')).status).toBe(200);
    await allConnected(b);
    await local.publishAsync(`${tag}/3`, 'after', { qos: 1 });
    expect((await rec.next(5000)).payload.toString()).toBe('after');
    expect(rec.messages.map((m) => m.payload.toString())).toEqual(['before', 'after']);
  });

  it('a config reload over the HTTP API applies the new mapping (the clients are replaced)', async () => {
    const tag = uniqueId('reload');
    const b = await broker(bridgeToml('reload', 'v4', entry(`${tag}/#`, `old/\${local.topic}`)), { api: true });
    await allConnected(b);
    const { rec } = await remoteReader(`+/${tag}/#`);
    const local = await client(b.url());
    await local.publishAsync(`${tag}/1`, 'one', { qos: 1 });
    expect((await rec.next(5000)).topic).toBe(`old/${tag}/1`);
    const { writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    writeFileSync(join(b.broker.config.plugins.dir, 'rmqtt-bridge-egress-mqtt.toml'), bridgeToml('reload', 'v5', entry(`${tag}/#`, `new/\${local.topic}`)));
    expect((await api(b, '/plugins/1/bridge-egress-mqtt/config/reload')).status).toBe(200);
    await allConnected(b);
    await local.publishAsync(`${tag}/2`, 'two', { qos: 1 });
    expect((await rec.next(5000)).topic).toBe(`new/${tag}/2`);
    expect(rec.messages.map((m) => m.topic)).toEqual([`old/${tag}/1`, `new/${tag}/2`]);
  });
});
