/**
 * The ingress bridge against a real mosquitto (started here on free ports) and against a raw MQTT peer
 * played by the test (for the bytes: when PUBACK / PUBREC are sent, a QoS 2 resend). QoS 0/1/2 over MQTT
 * 3.1.1 and 5, topic templates and skipped levels, QoS and retain mapping, message expiry, `$share`
 * remote filters spread over several clients, TLS, wrong credentials, RMQTT's file, hot stop/start.
 */
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definePlugin, type AnyPluginDefinition } from '@rmqtt-ts/plugin-api';
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
import ingress from '../src/index.js';

const RMQTT_INGRESS = '/work/shared/reference/rmqtt-configs/plugins/rmqtt-bridge-ingress-mqtt.toml';

let pki: Pki;
let mosq: MosquittoServer;
const scope = useTestScope();

beforeAll(async () => {
  pki = makePki();
  mosq = await startMosquitto({ tls: pki, requireClientCert: true, users: { bridge: 'secret', writer: 'writer' } });
});
afterAll(async () => {
  await mosq?.destroy();
  pki?.remove();
});

async function broker(toml: string, options: { logger?: ReturnType<typeof capturingLogger>['logger']; plugins?: AnyPluginDefinition[]; api?: boolean } = {}): Promise<TestBroker> {
  const files: Record<string, string> = { 'rmqtt-bridge-ingress-mqtt.toml': toml };
  if (options.api === true) files['rmqtt-http-api.toml'] = 'http_laddr = "127.0.0.1:0"\n';
  return scope.broker({
    config: { 'node.id': 1 },
    plugins: [ingress, retainer, ...(options.api === true ? [httpApi] : []), ...(options.plugins ?? [])],
    files,
    logger: options.logger,
  });
}

const client = (url: string, options: Parameters<typeof connectClient>[1] = {}): Promise<MqttClient> => scope.client(url, options);

async function remoteWriter(options: Parameters<typeof connectClient>[1] = {}): Promise<MqttClient> {
  return client(mosq.url, { username: 'writer', password: 'writer', ...options });
}

async function localReader(b: TestBroker, filter: string, options: Parameters<typeof connectClient>[1] = {}) {
  const c = await client(b.url(), options);
  const rec = recorder(c);
  await c.subscribeAsync(filter, { qos: 2 });
  return rec;
}

interface Attrs {
  received: number;
  routed: number;
  bridges: Array<{ name: string; entry_idx: number; client_id: string; remote_topic: string; connected: boolean; subscribed: boolean; received: number; connects: number; failures: number; last_error: string | null }>;
}

function attrs(b: TestBroker): Attrs {
  return b.broker.control.plugin('bridge-ingress-mqtt')!.attrs as unknown as Attrs;
}

async function allSubscribed(b: TestBroker): Promise<void> {
  await expect.poll(() => attrs(b).bridges.length > 0 && attrs(b).bridges.every((x) => x.subscribed), { timeout: 10_000 }).toBe(true);
}

function bridgeToml(name: string, ver: 'v4' | 'v5', entries: string, keys: Record<string, string> = {}): string {
  return bridgeTable({ name: `"${name}"`, server: `"tcp://127.0.0.1:${mosq.port}"`, username: '"bridge"', password: '"secret"', mqtt_ver: `"${ver}"`, ...keys }, entries);
}

function entry(remoteTopic: string, localTopic: string, more = 'remote.qos = 2'): string {
  return `[[bridges.entries]]\nremote.topic = "${remoteTopic}"\nlocal.topic = "${localTopic}"\n${more}\n`;
}

describe('from mosquitto', () => {
  for (const ver of ['v4', 'v5'] as const) {
    it(`QoS 0, 1 and 2 arrive with their QoS (${ver}) under the mapped topic, as bridged messages`, async () => {
      const tag = uniqueId('in');
      const b = await broker(bridgeToml(`b-${ver}`, ver, entry(`cloud/${tag}/#`, `edge/\${remote.topic}`)));
      await allSubscribed(b);
      expect(attrs(b).bridges[0]!.client_id).toBe(`edge:b-${ver}:ingress:1:0:0`);
      const rec = await localReader(b, `edge/cloud/${tag}/#`);
      const w = await remoteWriter({ protocolVersion: ver === 'v5' ? 5 : 4 });
      for (const qos of [0, 1, 2] as const) await w.publishAsync(`cloud/${tag}/q${qos}`, `m${qos}`, { qos });
      const got = await rec.waitFor(3, 5000);
      expect(got.map((m) => [m.topic, m.payload.toString(), m.packet.qos])).toEqual([
        [`edge/cloud/${tag}/q0`, 'm0', 0],
        [`edge/cloud/${tag}/q1`, 'm1', 1],
        [`edge/cloud/${tag}/q2`, 'm2', 2],
      ]);
      const m = b.broker.metrics.metrics();
      expect(m['bridge_ingress_mqtt.routed']).toBe(3);
      expect(m['messages.publish.bridge']).toBe(3);
    });
  }

  it('local.qos, local.retain and skip_levels; unset QoS and retain follow the remote message (MQTT 5: retain as published)', async () => {
    const tag = uniqueId('map');
    const b = await broker(
      bridgeToml('map', 'v5', entry(`a/${tag}/#`, `fixed/\${remote.topic}`, 'remote.qos = 2\nlocal.qos = 0\nlocal.retain = true\nlocal.skip_levels = 2') + entry(`b/${tag}/#`, `follow/\${remote.topic}`)),
    );
    await allSubscribed(b);
    const w = await remoteWriter();
    await w.publishAsync(`a/${tag}/x/y`, 'forced', { qos: 2, retain: false });
    await w.publishAsync(`b/${tag}/r`, 'kept', { qos: 1, retain: true });
    await w.publishAsync(`b/${tag}/n`, 'not kept', { qos: 1, retain: false });
    await expect.poll(() => attrs(b).routed).toBe(3);
    // a subscriber arriving now gets what this broker retained
    const rec = await localReader(b, '#');
    const got = await rec.waitFor(2, 5000);
    await new Promise((r) => setTimeout(r, 200));
    expect(rec.messages).toHaveLength(2);
    expect(got.map((m) => [m.topic, m.payload.toString(), m.packet.qos, m.packet.retain]).sort()).toEqual([
      ['fixed/x/y', 'forced', 0, true],
      [`follow/b/${tag}/r`, 'kept', 1, true],
    ]);
  });

  it('MQTT 5 properties pass through', async () => {
    const tag = uniqueId('props');
    const b = await broker(bridgeToml('props', 'v5', entry(`p/${tag}/#`, `\${remote.topic}`, 'remote.qos = 1')));
    await allSubscribed(b);
    const rec = await localReader(b, `p/${tag}/#`, { protocolVersion: 5 });
    const w = await remoteWriter({ protocolVersion: 5 });
    await w.publishAsync(`p/${tag}/props`, 'x', {
      qos: 1,
      properties: { contentType: 'text/plain', responseTopic: 'r/t', correlationData: Buffer.from('cd'), messageExpiryInterval: 120, userProperties: { a: '1', b: ['2', '3'] } },
    });
    const m = await rec.next(5000);
    expect(m.packet.properties?.contentType).toBe('text/plain');
    expect(m.packet.properties?.responseTopic).toBe('r/t');
    expect(m.packet.properties?.correlationData?.toString()).toBe('cd');
    expect(m.packet.properties?.messageExpiryInterval).toBeGreaterThan(110);
    expect(m.packet.properties?.userProperties).toEqual({ a: '1', b: ['2', '3'] });
  });

  it('expiry_interval: a bridged message waiting for an offline session expires after it ("0s": never)', async () => {
    for (const [expiry, expected] of [['"1s"', 0], ['"0s"', 1]] as const) {
      const tag = uniqueId('exp');
      const b = await broker(bridgeToml('exp', 'v4', entry(`e/${tag}/#`, `\${remote.topic}`, 'remote.qos = 1'), { expiry_interval: expiry }));
      await allSubscribed(b);
      const id = uniqueId('offline');
      const s = await client(b.url(), { clientId: id, clean: false });
      await s.subscribeAsync(`e/${tag}/#`, { qos: 1 });
      await endClient(s);
      const w = await remoteWriter();
      await w.publishAsync(`e/${tag}/x`, 'waits', { qos: 1 });
      await expect.poll(() => attrs(b).routed).toBe(1);
      await new Promise((r) => setTimeout(r, 1500));
      const back = mqtt.connect(b.url(), { clientId: id, clean: false, reconnectPeriod: 0 });
      scope.endAfterEach(back);
      const got: string[] = [];
      back.on('message', (_t, payload) => got.push(payload.toString()));
      await new Promise<void>((resolve) => back.once('connect', () => resolve()));
      await new Promise((r) => setTimeout(r, 300));
      expect(got).toHaveLength(expected);
    }
  });

  it('a $share remote filter is subscribed by every client, which share the messages; each arrives once', async () => {
    const tag = uniqueId('share');
    const b = await broker(bridgeToml('share', 'v4', entry(`$share/g/s/${tag}/#`, `local/\${remote.topic}`, 'remote.qos = 1'), { concurrent_client_limit: '3' }));
    await allSubscribed(b);
    expect(attrs(b).bridges.map((x) => x.client_id)).toEqual(['edge:share:ingress:1:0:0', 'edge:share:ingress:1:0:1', 'edge:share:ingress:1:0:2']);
    const rec = await localReader(b, `local/s/${tag}/#`);
    const w = await remoteWriter();
    for (let i = 0; i < 60; i++) await w.publishAsync(`s/${tag}/${i}`, String(i), { qos: 1 });
    const got = await rec.waitFor(60, 10_000);
    expect(new Set(got.map((m) => m.payload.toString())).size).toBe(60);
    await new Promise((r) => setTimeout(r, 200));
    expect(rec.messages).toHaveLength(60);
    const per = attrs(b).bridges.map((x) => x.received);
    expect(per.reduce((a, n) => a + n, 0)).toBe(60);
    expect(per.filter((n) => n > 0).length).toBeGreaterThan(1);
  });

  it('a filter without $share gets one client whatever concurrent_client_limit says', async () => {
    const tag = uniqueId('one');
    const b = await broker(bridgeToml('one', 'v4', entry(`o/${tag}/#`, `\${remote.topic}`), { concurrent_client_limit: '3' }));
    await allSubscribed(b);
    expect(attrs(b).bridges).toHaveLength(1);
  });

  it('TLS with a client certificate', async () => {
    const tag = uniqueId('tls');
    const b = await broker(
      bridgeToml('tls', 'v4', entry(`t/${tag}/#`, `\${remote.topic}`), {
        server: `"tls://127.0.0.1:${mosq.tlsPort}"`,
        root_cert: `"${pki.caPath}"`,
        client_cert: `"${pki.client.certPath}"`,
        client_key: `"${pki.client.keyPath}"`,
      }),
    );
    await allSubscribed(b);
    const rec = await localReader(b, `t/${tag}/#`);
    const w = await remoteWriter();
    await w.publishAsync(`t/${tag}/x`, 'secure', { qos: 1 });
    expect((await rec.next(5000)).payload.toString()).toBe('secure');
  });

  it('wrong credentials: logged once, retried, and the broker carries on', async () => {
    const cap = capturingLogger();
    const b = await broker(bridgeToml('bad', 'v4', entry('x/#', '${remote.topic}'), { password: '"nope"' }), { logger: cap.logger });
    await expect.poll(() => attrs(b).bridges[0]!.failures, { timeout: 5000 }).toBeGreaterThanOrEqual(3);
    const failures = cap.lines.filter((l) => l.msg === 'bridge connection failed; retrying');
    expect(failures).toHaveLength(1);
    expect(String(failures[0]!['error'])).toMatch(/not authorized/i);
    const rec = await localReader(b, 'local/#');
    const c = await client(b.url());
    await c.publishAsync('local/x', 'fine', { qos: 1 });
    expect((await rec.next()).payload.toString()).toBe('fine');
  });

  it('the shipped config loads; its bridge is disabled until set up, and the log says so', async () => {
    const { readFileSync } = await import('node:fs');
    const cap = capturingLogger();
    const b = await broker(readFileSync(new URL('../../../configs/plugins/rmqtt-bridge-ingress-mqtt.toml', import.meta.url), 'utf8'), { logger: cap.logger });
    expect(attrs(b).bridges).toHaveLength(0);
    expect(cap.lines.some((l) => l.msg.startsWith('no bridge is enabled'))).toBe(true);
  });

  it("RMQTT's own rmqtt-bridge-ingress-mqtt.toml loads unchanged", async () => {
    const b = await broker(readFileSync(RMQTT_INGRESS, 'utf8'));
    const ids = attrs(b).bridges.map((x) => x.client_id);
    // two bridges × two $share entries × 5 clients
    expect(ids).toHaveLength(20);
    expect(ids).toContain('prefix:bridge_name_1:ingress:1:0:0');
    expect(ids).toContain('prefix:bridge_name_2:ingress:1:1:4');
  });

  it('hot stop and start over the HTTP API', async () => {
    const tag = uniqueId('hot');
    const b = await broker(bridgeToml('hot', 'v4', entry(`h/${tag}/#`, `\${remote.topic}`)), { api: true });
    await allSubscribed(b);
    const rec = await localReader(b, `h/${tag}/#`);
    const w = await remoteWriter();
    const api = async (path: string): Promise<number> => {
      const a = b.broker.control.plugin('http-api')!.attrs as { http_laddr: string };
      return (await fetch(`http://${a.http_laddr}/api/v1${path}`, { method: 'PUT' })).status;
    };
    await w.publishAsync(`h/${tag}/1`, 'before', { qos: 1 });
    expect((await rec.next(5000)).payload.toString()).toBe('before');
    expect(await api('/plugins/1/bridge-ingress-mqtt/unload')).toBe(200);
    await w.publishAsync(`h/${tag}/2`, 'while stopped', { qos: 1 });
    expect(await api('/plugins/1/bridge-ingress-mqtt/load')).toBe(200);
    await allSubscribed(b);
    await w.publishAsync(`h/${tag}/3`, 'after', { qos: 1 });
    expect((await rec.next(5000)).payload.toString()).toBe('after');
    expect(rec.messages.map((m) => m.payload.toString())).toEqual(['before', 'after']);
  });

  it('a config reload over the HTTP API subscribes what the new file says', async () => {
    const tag = uniqueId('reload');
    const b = await broker(bridgeToml('reload', 'v4', entry(`a/${tag}/#`, `\${remote.topic}`)), { api: true });
    await allSubscribed(b);
    const rec = await localReader(b, `+/${tag}/#`);
    const w = await remoteWriter();
    const { writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    writeFileSync(join(b.broker.config.plugins.dir, 'rmqtt-bridge-ingress-mqtt.toml'), bridgeToml('reload', 'v4', entry(`b/${tag}/#`, `\${remote.topic}`)));
    const a = b.broker.control.plugin('http-api')!.attrs as { http_laddr: string };
    expect((await fetch(`http://${a.http_laddr}/api/v1/plugins/1/bridge-ingress-mqtt/config/reload`, { method: 'PUT' })).status).toBe(200);
    await allSubscribed(b);
    expect(attrs(b).bridges.map((x) => x.remote_topic)).toEqual([`b/${tag}/#`]);
    await w.publishAsync(`a/${tag}/1`, 'old', { qos: 1 });
    await w.publishAsync(`b/${tag}/1`, 'new', { qos: 1 });
    expect((await rec.next(5000)).topic).toBe(`b/${tag}/1`);
    await new Promise((r) => setTimeout(r, 200));
    expect(rec.messages.map((m) => m.topic)).toEqual([`b/${tag}/1`]);
  });
});

describe('a remote restart mid-stream', () => {
  let durable: MosquittoServer;
  beforeAll(async () => {
    durable = await startMosquitto({ persistence: true });
  });
  afterAll(async () => {
    await durable?.destroy();
  });

  it('with a persistent remote session, every QoS 1 message published across the restart arrives', async () => {
    const tag = uniqueId('restart');
    const b = await broker(
      bridgeToml('durable', 'v4', entry(`r/${tag}/#`, `\${remote.topic}`, 'remote.qos = 1'), {
        server: `"tcp://127.0.0.1:${durable.port}"`,
        username: '"x"',
        password: '"x"',
        reconnect_interval: '"100ms"',
        'v4.clean_session': 'false',
      }),
    );
    await allSubscribed(b);
    const rec = await localReader(b, `r/${tag}/#`);
    const w = mqtt.connect(durable.url, { clientId: uniqueId('writer'), clean: false, reconnectPeriod: 100 });
    scope.endAfterEach(w);
    await new Promise<void>((resolve) => w.once('connect', () => resolve()));
    const N = 200;
    const sent: Array<Promise<unknown>> = [];
    for (let i = 0; i < N; i++) {
      sent.push(w.publishAsync(`r/${tag}/m`, String(i), { qos: 1 }));
      if (i === 60) await durable.stop();
      if (i === 140) await durable.start();
      await new Promise((r) => setTimeout(r, 2));
    }
    await Promise.all(sent);
    await expect.poll(() => new Set(rec.messages.map((m) => m.payload.toString())).size, { timeout: 15_000 }).toBe(N);
    expect(attrs(b).bridges[0]!.connects).toBeGreaterThanOrEqual(2);
  });
});

describe('acknowledgements, at the wire (the test plays the remote broker)', () => {
  /** A remote broker played by the test; `peer()` accepts the bridge's connection, CONNACKs and SUBACKs it. */
  async function fakeRemote(version: 4 | 5): Promise<{ port: number; peer: () => Promise<RawClient>; accepted: () => Promise<RawClient> }> {
    const server = await RawServer.start(version);
    scope.closeAfterEach(server);
    return {
      port: server.port,
      accepted: () => server.next(),
      async peer() {
        const p = await server.next();
        const connect = await p.expect(1);
        expect(connect.clientId).toBe('edge:raw:ingress:1:0:0');
        expect(connect.protocolVersion).toBe(version);
        p.send({ type: 2, sessionPresent: false, reasonCode: 0, properties: {} });
        const sub = await p.expect(8);
        p.send({ type: 9, packetId: sub.packetId, reasonCodes: [2], properties: {} });
        return p;
      },
    };
  }

  /** Holds message.publish of topics under `held/` until released. */
  function holdingPlugin(): { plugin: AnyPluginDefinition; release: () => void; held: () => number } {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    let held = 0;
    const plugin = definePlugin({
      name: 'test-hold',
      apiVersion: '^1.0.0',
      create: (ctx) => ({
        init() {
          ctx.hooks.on('message.publish', async (m) => {
            if (m.topic.startsWith('held/')) {
              held++;
              await gate;
            }
            return m;
          });
        },
      }),
    });
    return { plugin, release, held: () => held };
  }

  async function setup(version: 4 | 5) {
    const remote = await fakeRemote(version);
    const hold = holdingPlugin();
    const b = await broker(bridgeToml('raw', version === 5 ? 'v5' : 'v4', entry('#', 'held/${remote.topic}'), { server: `"tcp://127.0.0.1:${remote.port}"` }), { plugins: [hold.plugin] });
    const peer = await remote.peer();
    const rec = await localReader(b, 'held/#');
    return { hold, peer, rec };
  }

  const publish = (qos: 1 | 2, payload: string, packetId: number) =>
    ({ type: 3 as const, topic: 'x', payload: Buffer.from(payload), qos, retain: false, dup: false, packetId, properties: {} });

  for (const version of [4, 5] as const) {
    it(`QoS 1 (MQTT ${version === 5 ? '5' : '3.1.1'}): PUBACK goes out only once the message is routed here`, async () => {
      const { hold, peer, rec } = await setup(version);
      peer.send(publish(1, 'q1', 7));
      await expect.poll(() => hold.held()).toBe(1);
      await expect(peer.next(400)).rejects.toThrow(/no packet/);
      hold.release();
      const ack = await peer.expect(4);
      expect(ack.packetId).toBe(7);
      expect((await rec.next()).payload.toString()).toBe('q1');
    });
  }

  it('QoS 2 over MQTT 5: PUBREC after routing; a PUBLISH resent before PUBREL is answered but not routed again', async () => {
    const { hold, peer, rec } = await setup(5);
    peer.send(publish(2, 'once', 9));
    await expect.poll(() => hold.held()).toBe(1);
    await expect(peer.next(300)).rejects.toThrow(/no packet/);
    hold.release();
    expect((await peer.expect(5)).packetId).toBe(9);
    // the PUBREC was lost, say: the remote sends the PUBLISH again
    peer.send({ ...publish(2, 'once', 9), dup: true });
    expect((await peer.expect(5)).packetId).toBe(9);
    peer.send({ type: 6, packetId: 9, reasonCode: 0, properties: {} });
    expect((await peer.expect(7)).packetId).toBe(9);
    await rec.next();
    await new Promise((r) => setTimeout(r, 200));
    expect(rec.messages).toHaveLength(1);
    expect(hold.held()).toBe(1);
    // the id is free again: a new message with it is routed
    peer.send(publish(2, 'again', 9));
    expect((await peer.expect(5)).packetId).toBe(9);
    expect((await rec.next()).payload.toString()).toBe('again');
  });

  it('QoS 2 over MQTT 3.1.1: routed once at PUBREL, PUBCOMP after routing, a resend before PUBREL not routed twice', async () => {
    const { hold, peer, rec } = await setup(4);
    peer.send(publish(2, 'once', 9));
    expect((await peer.expect(5)).packetId).toBe(9);
    peer.send({ ...publish(2, 'once', 9), dup: true });
    expect((await peer.expect(5)).packetId).toBe(9);
    expect(hold.held()).toBe(0);
    peer.send({ type: 6, packetId: 9, reasonCode: 0, properties: {} });
    await expect.poll(() => hold.held()).toBe(1);
    await expect(peer.next(300)).rejects.toThrow(/no packet/);
    hold.release();
    expect((await peer.expect(7)).packetId).toBe(9);
    await rec.next();
    await new Promise((r) => setTimeout(r, 200));
    expect(rec.messages).toHaveLength(1);
  });
  it('the CONNECT carries the config: MQTT 5 options, credentials, keep alive, clean start, last will with its properties', async () => {
    const remote = await fakeRemote(5);
    process.env['INGRESS_TEST_PASS'] = 'p@ss';
    const will = '{ qos = 1, retain = true, topic = "edge/state", message = "gone", will_delay_interval = "10s", message_expiry_interval = "1h", content_type = "text/plain" }';
    await broker(
      bridgeToml('raw', 'v5', entry('#', '${remote.topic}'), {
        server: `"tcp://127.0.0.1:${remote.port}"`,
        username: '"edge-1"',
        password: '"${ENV:INGRESS_TEST_PASS}"',
        keepalive: '"45s"',
        'v5.clean_start': 'false',
        'v5.session_expiry_interval': '"1h"',
        'v5.receive_maximum': '32',
        'v5.maximum_packet_size': '"64K"',
        'v5.topic_alias_maximum': '5',
        'v5.last_will': will,
      }),
    );
    const peer = await remote.accepted();
    const c = await peer.expect(1);
    expect(c).toMatchObject({ protocolVersion: 5, clientId: 'edge:raw:ingress:1:0:0', cleanStart: false, keepalive: 45, username: 'edge-1' });
    expect(c.password?.toString()).toBe('p@ss');
    expect(c.properties).toMatchObject({ sessionExpiryInterval: 3600, receiveMaximum: 32, maximumPacketSize: 65536, topicAliasMaximum: 5 });
    expect(c.will).toMatchObject({ topic: 'edge/state', qos: 1, retain: true });
    expect(c.will?.payload.toString()).toBe('gone');
    expect(c.will?.properties).toMatchObject({ willDelayInterval: 10, messageExpiryInterval: 3600, contentType: 'text/plain' });
  });

  it('connect_timeout: a remote that never answers CONNECT is given up on and tried again', async () => {
    const remote = await fakeRemote(4);
    const b = await broker(bridgeToml('raw', 'v4', entry('#', '${remote.topic}'), { server: `"tcp://127.0.0.1:${remote.port}"`, connect_timeout: '"300ms"' }));
    // accepted, CONNECT read, never answered: a second connection comes after the timeout
    await (await remote.accepted()).expect(1);
    await (await remote.accepted()).expect(1, 5000);
    await expect.poll(() => attrs(b).bridges[0]!.last_error ?? '').toMatch(/timeout/i);
  });
  it('a session the remote kept is not subscribed again; a new one is', async () => {
    const server = await RawServer.start(4);
    scope.closeAfterEach(server);
    const b = await broker(bridgeToml('raw', 'v4', entry('cmd/#', '${remote.topic}'), { server: `"tcp://127.0.0.1:${server.port}"`, reconnect_interval: '"100ms"', 'v4.clean_session': 'false' }));
    const connectAndAnswer = async (sessionPresent: boolean): Promise<RawClient> => {
      const p = await server.next();
      await p.expect(1);
      p.send({ type: 2, sessionPresent, reasonCode: 0, properties: {} });
      return p;
    };
    const first = await connectAndAnswer(false);
    const sub = await first.expect(8);
    expect(sub.subscriptions.map((x) => x.filter)).toEqual(['cmd/#']);
    first.send({ type: 9, packetId: sub.packetId, reasonCodes: [2], properties: {} });
    await allSubscribed(b);
    first.socket.destroy();
    const second = await connectAndAnswer(true);
    await expect(second.next(400)).rejects.toThrow(/no packet/);
    second.socket.destroy();
    const third = await connectAndAnswer(false);
    expect((await third.expect(8)).subscriptions.map((x) => x.filter)).toEqual(['cmd/#']);
  });

  it('a refused subscription is logged and asked for again after reconnect_interval', async () => {
    const server = await RawServer.start(4);
    scope.closeAfterEach(server);
    const cap = capturingLogger();
    const b = await broker(bridgeToml('raw', 'v4', entry('cmd/#', '${remote.topic}'), { server: `"tcp://127.0.0.1:${server.port}"`, reconnect_interval: '"200ms"' }), { logger: cap.logger });
    const p = await server.next();
    await p.expect(1);
    p.send({ type: 2, sessionPresent: false, reasonCode: 0, properties: {} });
    const refused = await p.expect(8);
    p.send({ type: 9, packetId: refused.packetId, reasonCodes: [0x80], properties: {} });
    const again = await p.expect(8, 3000);
    expect(again.subscriptions.map((x) => x.filter)).toEqual(['cmd/#']);
    p.send({ type: 9, packetId: again.packetId, reasonCodes: [1], properties: {} });
    await allSubscribed(b);
    const refusal = cap.lines.find((l) => l.msg === 'remote subscription refused or failed');
    expect(refusal).toMatchObject({ client_id: 'edge:raw:ingress:1:0:0', filter: 'cmd/#', retry_in_ms: 200 });
    expect(`${String(refusal?.['error'])} ${String(refusal?.['reason_code'])}`).toMatch(/Unspecified error|128/);
  });
});
