/**
 * The egress bridge against a real mosquitto (started here on free ports): QoS 0/1/2 over MQTT 3.1.1 and
 * 5, topic templates, skipped levels, retain and QoS mapping, MQTT 5 properties, TLS with client
 * certificates, credentials from the environment, wrong addresses and credentials (logged, retried, the
 * broker unaffected), the bounded channel on both sides of its capacity across a remote restart, and a
 * hot stop/start over the HTTP API.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  capturingLogger,
  connectClient,
  endClient,
  makePki,
  recorder,
  startBroker,
  startMosquitto,
  uniqueId,
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
const brokers: TestBroker[] = [];
const clients: MqttClient[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  pki = makePki();
  mosq = await startMosquitto({ tls: pki, requireClientCert: true, users: { bridge: 'secret', reader: 'reader' } });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => endClient(c, true)));
  await Promise.all(brokers.splice(0).map((b) => b.stop()));
});
afterAll(async () => {
  await mosq?.destroy();
  pki?.remove();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function pluginsDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'rmqtt-egress-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

async function broker(toml: string, options: { logger?: ReturnType<typeof capturingLogger>['logger']; api?: boolean; retain?: boolean } = {}): Promise<TestBroker> {
  const files: Record<string, string> = { 'rmqtt-bridge-egress-mqtt.toml': toml };
  if (options.api === true) files['rmqtt-http-api.toml'] = 'http_laddr = "127.0.0.1:0"\n';
  const b = await startBroker({
    config: { 'node.id': 1 },
    plugins: [egress, ...(options.api === true ? [httpApi] : []), ...(options.retain === true ? [retainer] : [])],
    pluginsDir: pluginsDir(files),
    logger: options.logger,
  });
  brokers.push(b);
  return b;
}

async function client(url: string, options: Parameters<typeof connectClient>[1] = {}): Promise<MqttClient> {
  const c = await connectClient(url, options);
  clients.push(c);
  return c;
}

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
  bridges: Array<{ name: string; entry_idx: number; client_id: string; connected: boolean; waiting: number; in_flight: number; sent: number; connects: number; last_error: string | null }>;
}

function attrs(b: TestBroker): Attrs {
  return b.broker.control.plugin('bridge-egress-mqtt')!.attrs as unknown as Attrs;
}

async function allConnected(b: TestBroker): Promise<void> {
  await expect.poll(() => attrs(b).bridges.every((x) => x.connected), { timeout: 10_000 }).toBe(true);
}

/** A bridge table to the test mosquitto (plain TCP, user "bridge"); `keys` add or replace keys. */
function bridgeToml(name: string, ver: 'v4' | 'v5', entries: string, keys: Record<string, string> = {}): string {
  const all: Record<string, string> = {
    enable: 'true',
    name: `"${name}"`,
    client_id_prefix: '"edge"',
    server: `"tcp://127.0.0.1:${mosq.port}"`,
    username: '"bridge"',
    password: '"secret"',
    concurrent_client_limit: '1',
    connect_timeout: '"5s"',
    keepalive: '"60s"',
    reconnect_interval: '"200ms"',
    mqtt_ver: `"${ver}"`,
    ...keys,
  };
  return `[[bridges]]\n${Object.entries(all).map(([k, v]) => `${k} = ${v}`).join('\n')}\n${entries}`;
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
