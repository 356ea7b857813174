/**
 * The HTTP API through a real HTTP client (undici) against a broker with real MQTT clients (mqtt.js):
 * every endpoint's success body field by field, and its failures — bad JSON, unknown clients, nodes and
 * plugins, out-of-range query values, oversized bodies, a missing or wrong bearer token.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MqttClient } from 'mqtt';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definePlugin } from '@rmqtt-ts/plugin-api';
import retainer from '@rmqtt-ts/plugin-retainer';
import sysTopic from '@rmqtt-ts/plugin-sys-topic';
import { connectClient, denyPublishTo, endClient, recorder, startBroker, subscribe, uniqueId, type TestBroker } from '@rmqtt-ts/testkit';
import httpApi from '../src/index.js';

/** The node id the expectations below name (the shipped config's; the built-in default is 0). */
const NODE_1 = { 'node.id': 1 };
const RMQTT_HTTP_API_TOML = '/work/shared/reference/rmqtt-configs/plugins/rmqtt-http-api.toml';

type PromFamily = { name: string; help: string; type: string; metrics: { value: string; labels?: Record<string, string> }[] };
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => PromFamily[];

const dirs: string[] = [];
const clients: MqttClient[] = [];

/** An immutable plugin, as storage and cluster plugins are: it starts only at boot. */
const immutable = definePlugin({ name: 'test-immutable', apiVersion: '^1.0.0', immutable: true, create: () => ({}) });

/** A plugins dir with the http-api on a free loopback port (plus any other files). */
function pluginsDir(httpApiToml = '', others: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'rmqtt-http-api-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'rmqtt-http-api.toml'), `http_laddr = "127.0.0.1:0"\n${httpApiToml}`);
  for (const [name, text] of Object.entries(others)) writeFileSync(join(dir, name), text);
  return dir;
}

/** The API's base URL, from the plugin's attrs. */
function apiBase(b: TestBroker): string {
  const attrs = b.broker.control.plugin('http-api')?.attrs as { http_laddr?: string } | undefined;
  if (attrs?.http_laddr === undefined || attrs.http_laddr === '') throw new Error('http-api is not listening');
  return `http://${attrs.http_laddr}/api/v1`;
}

interface Reply {
  status: number;
  type: string;
  text: string;
  json(): unknown;
}

async function call(b: TestBroker, method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, options: { body?: unknown; raw?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | undefined;
  if (options.raw !== undefined) {
    body = options.raw;
    headers['content-type'] ??= 'application/json';
  } else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  const r = await request(`${apiBase(b)}${path}`, { method, headers, body });
  const text = await r.body.text();
  return { status: r.statusCode, type: String(r.headers['content-type'] ?? ''), text, json: () => JSON.parse(text) };
}

async function get(b: TestBroker, path: string): Promise<unknown> {
  const r = await call(b, 'GET', path);
  expect(r.status, `${path}: ${r.text}`).toBe(200);
  return r.json();
}

/** An error answer: the status and a JSON `{ code, message }`. */
async function expectError(r: Promise<Reply>, status: number, code?: string): Promise<{ code: string; message: string }> {
  const reply = await r;
  expect(reply.status, reply.text).toBe(status);
  const body = reply.json() as { code: string; message: string };
  expect(typeof body.code).toBe('string');
  expect(typeof body.message).toBe('string');
  expect(body.message.length).toBeGreaterThan(0);
  if (code !== undefined) expect(body.code).toBe(code);
  return body;
}

async function client(b: TestBroker, options: Parameters<typeof connectClient>[1] = {}): Promise<MqttClient> {
  const c = await connectClient(b.url(), options);
  clients.push(c);
  return c;
}

afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => endClient(c, true)));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('http-api', () => {
  let b: TestBroker;

  beforeAll(async () => {
    b = await startBroker({ config: NODE_1, plugins: [httpApi, retainer, sysTopic, denyPublishTo('secret/'), immutable], startups: ['http-api', 'retainer', 'test-deny-publish', 'test-immutable'], pluginsDir: pluginsDir() });
  });
  afterAll(async () => {
    await b?.stop();
  });

  describe('brokers, nodes, health', () => {
    it('GET / lists every route with name, method, path and descr', async () => {
      const routes = (await get(b, '')) as { name: string; method: string; path: string; descr: string }[];
      expect(routes.length).toBeGreaterThan(30);
      for (const r of routes) {
        expect(r).toEqual({ name: expect.any(String), method: expect.stringMatching(/^(GET|POST|PUT|DELETE)$/), path: expect.stringMatching(/^\/api\/v1/), descr: expect.any(String) });
      }
      expect(routes).toContainEqual(expect.objectContaining({ method: 'PUT', path: '/api/v1/plugins/{node}/{plugin}/load' }));
    });

    it('GET /brokers and /brokers/{id} answer the node, its version and uptime', async () => {
      const list = (await get(b, '/brokers')) as Record<string, unknown>[];
      expect(list).toHaveLength(1);
      const one = (await get(b, '/brokers/1')) as Record<string, unknown>;
      for (const x of [list[0]!, one]) {
        expect(x['node_id']).toBe(1);
        expect(x['node_name']).toBe('1@127.0.0.1');
        expect(x['running']).toBe(true);
        expect(x['sysdescr']).toEqual(expect.any(String));
        expect(x['version']).toMatch(/^rmqtt-ts\/\d+\.\d+\.\d+/);
        expect(x['rustc_version']).toContain(process.version);
        expect(x['uptime']).toMatch(/^\d+ days \d+ hours, \d+ minutes, \d+ seconds$/);
        expect(x['datetime']).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
      }
    });

    it('GET /nodes/{id} adds connections, load, memory and disk', async () => {
      const n = (await get(b, '/nodes/1')) as Record<string, unknown>;
      for (const k of ['load1', 'load5', 'load15']) expect(n[k]).toEqual(expect.any(Number));
      for (const k of ['memory_total', 'memory_used', 'memory_free', 'disk_total', 'disk_free', 'connections']) {
        expect(Number.isInteger(n[k]), k).toBe(true);
        expect(n[k] as number).toBeGreaterThanOrEqual(0);
      }
      expect(n['memory_total'] as number).toBeGreaterThan(0);
      expect(n['disk_total'] as number).toBeGreaterThan(0);
      expect(n['boottime']).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
      expect((await get(b, '/nodes')) as unknown[]).toHaveLength(1);
    });

    it('GET /health/check answers running', async () => {
      expect(await get(b, '/health/check')).toEqual({ running: true, nodes: [{ node_id: 1, running: true }] });
      expect(await get(b, '/health/check/1')).toEqual({ node_id: 1, running: true });
    });

    it('an unknown node is 404 and a node id that is not a number is 400', async () => {
      await expectError(call(b, 'GET', '/brokers/7'), 404, 'ERR_NOT_FOUND');
      await expectError(call(b, 'GET', '/nodes/7'), 404);
      await expectError(call(b, 'GET', '/stats/7'), 404);
      await expectError(call(b, 'GET', '/brokers/abc'), 400, 'ERR_BAD_REQUEST');
      await expectError(call(b, 'GET', '/plugins/-1'), 400);
    });

    it('an unknown route is a JSON 404', async () => {
      await expectError(call(b, 'GET', '/no/such/thing'), 404, 'ERR_NOT_FOUND');
    });
  });

  describe('clients', () => {
    it('GET /clients lists connected and offline clients with RMQTT fields', async () => {
      const id4 = uniqueId('v4');
      const id5 = uniqueId('v5');
      const gone = uniqueId('gone');
      await client(b, { clientId: id4, protocolVersion: 4, username: 'alice', keepalive: 30, will: { topic: 'w/t', payload: Buffer.from('bye'), qos: 1, retain: false } });
      await client(b, { clientId: id5, protocolVersion: 5, keepalive: 40 });
      const g = await connectClient(b.url(), { clientId: gone, protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 300 } });
      await endClient(g);

      const all = (await get(b, '/clients')) as Record<string, unknown>[];
      const c4 = all.find((c) => c['clientid'] === id4)!;
      expect(c4).toMatchObject({
        node_id: 1,
        clientid: id4,
        username: 'alice',
        superuser: false,
        proto_ver: 4,
        ip_address: '127.0.0.1',
        connected: true,
        disconnected_at: '',
        disconnected_reason: '',
        keepalive: 30,
        clean_start: true,
        session_present: false,
        expiry_interval: 0,
        subscriptions_cnt: 0,
        inflight: 0,
        mqueue_len: 0,
        last_will: { qos: 1, retain: false, topic: 'w/t', message: Buffer.from('bye').toString('base64') },
      });
      expect(c4['port']).toEqual(expect.any(Number));
      for (const k of ['connected_at', 'created_at']) expect(c4[k]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
      for (const k of ['max_subscriptions', 'max_inflight', 'max_mqueue']) expect(Number.isInteger(c4[k])).toBe(true);
      expect(all.find((c) => c['clientid'] === id5)).toMatchObject({ username: 'undefined', proto_ver: 5, keepalive: 40, last_will: null });
      const off = all.find((c) => c['clientid'] === gone)!;
      expect(off).toMatchObject({ connected: false, expiry_interval: 300 });
      expect(off['disconnected_at']).toMatch(/^\d{4}-/);
      // back on its stored session: CONNACK said session present, and so does the API
      await client(b, { clientId: gone, protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 300 } });
      expect(await get(b, `/clients/${gone}`)).toMatchObject({ connected: true, session_present: true, disconnected_at: '' });
      expect(((await get(b, `/clients?_like_clientid=${gone}&session_present=true`)) as unknown[]).length).toBe(1);
    });

    it('GET /clients filters', async () => {
      const tag = uniqueId('flt');
      await client(b, { clientId: `${tag}-a`, protocolVersion: 4, username: `${tag}-user` });
      await client(b, { clientId: `${tag}-b`, protocolVersion: 5 });
      const ids = async (q: string): Promise<string[]> => ((await get(b, `/clients?${q}`)) as { clientid: string }[]).map((c) => c.clientid).filter((id) => id.startsWith(tag)).sort();
      expect(await ids(`clientid=${tag}-a`)).toEqual([`${tag}-a`]);
      expect(await ids(`username=${tag}-user`)).toEqual([`${tag}-a`]);
      expect(await ids(`_like_clientid=${tag}`)).toEqual([`${tag}-a`, `${tag}-b`]);
      expect(await ids(`_like_clientid=${tag}&proto_ver=5`)).toEqual([`${tag}-b`]);
      expect(await ids(`_like_clientid=${tag}&connected=true`)).toEqual([`${tag}-a`, `${tag}-b`]);
      expect(await ids(`_like_clientid=${tag}&connected=false`)).toEqual([]);
      expect(await ids(`_like_clientid=${tag}&ip_address=127.0.0.1`)).toEqual([`${tag}-a`, `${tag}-b`]);
      expect(await ids(`_like_clientid=${tag}&_gte_created_at=${Math.floor(Date.now() / 1000) - 60}`)).toEqual([`${tag}-a`, `${tag}-b`]);
      expect(await ids(`_like_clientid=${tag}&_lte_created_at=2000-01-01%2000:00:00`)).toEqual([]);
      expect(await ids(`_like_clientid=${tag}&_lte_mqueue_len=0`)).toEqual([`${tag}-a`, `${tag}-b`]);
      expect((await get(b, `/clients?_like_clientid=${tag}&_limit=1`)) as unknown[]).toHaveLength(1);
    });

    it('out-of-range or malformed query values are 400', async () => {
      await expectError(call(b, 'GET', '/clients?_limit=-1'), 400, 'ERR_BAD_REQUEST');
      await expectError(call(b, 'GET', '/clients?proto_ver=7'), 400);
      await expectError(call(b, 'GET', '/clients?connected=maybe'), 400);
      await expectError(call(b, 'GET', '/clients?_gte_created_at=yesterday'), 400);
      await expectError(call(b, 'GET', '/subscriptions?qos=3'), 400);
      await expectError(call(b, 'GET', '/routes?_limit=x'), 400);
    });

    it('GET /clients/{id}, /online and DELETE /clients/{id}', async () => {
      const id = uniqueId('kick');
      const c = await client(b, { clientId: id, protocolVersion: 5 });
      expect(await get(b, `/clients/${id}`)).toMatchObject({ clientid: id, connected: true });
      expect(await get(b, `/clients/${id}/online`)).toBe(true);
      const closed = new Promise<number | undefined>((resolve) => c.once('disconnect', (p) => resolve(p.reasonCode)));
      const kicked = await call(b, 'DELETE', `/clients/${id}`);
      expect(kicked.status).toBe(200);
      expect(kicked.json()).toMatchObject({ node: 1, clientid: id, username: 'undefined', ipaddress: expect.stringMatching(/^127\.0\.0\.1:\d+$/), create_time: expect.any(Number) });
      // [MQTT-3.14.2] v5: DISCONNECT 0x98 Administrative action
      expect(await closed).toBe(0x98);
      await expectError(call(b, 'GET', `/clients/${id}`), 404, 'ERR_NOT_FOUND');
      expect(await get(b, `/clients/${id}/online`)).toBe(false);
      await expectError(call(b, 'DELETE', `/clients/${id}`), 404);
    });

    it('GET /clients/offlines lists offline sessions; DELETE /clients/offlines ends them', async () => {
      const tag = uniqueId('offl');
      for (const n of ['a', 'b']) {
        await endClient(await connectClient(b.url(), { clientId: `${tag}-${n}`, protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 600 } }));
      }
      await client(b, { clientId: `${tag}-online`, protocolVersion: 5 });
      const offline = (await get(b, `/clients/offlines?_like_clientid=${tag}`)) as { clientid: string; connected: boolean }[];
      expect(offline.map((c) => c.clientid).sort()).toEqual([`${tag}-a`, `${tag}-b`]);
      expect(offline.every((c) => !c.connected)).toBe(true);
      const del = await call(b, 'DELETE', `/clients/offlines?_like_clientid=${tag}`);
      expect(del.status).toBe(200);
      expect(del.json()).toEqual({ count: 2 });
      expect((await get(b, `/clients?_like_clientid=${tag}`)) as { clientid: string }[]).toEqual([expect.objectContaining({ clientid: `${tag}-online` })]);
    });

    it('client ids with /, + and # are path segments when encoded', async () => {
      const id = `${uniqueId('odd')}/a+b#c`;
      await client(b, { clientId: id, protocolVersion: 5 });
      expect(await get(b, `/clients/${encodeURIComponent(id)}`)).toMatchObject({ clientid: id });
    });
  });

  describe('subscriptions and routes', () => {
    it('GET /subscriptions, /subscriptions/{id} and filters', async () => {
      const id = uniqueId('subs');
      const c = await client(b, { clientId: id, protocolVersion: 5 });
      await subscribe(c, ['sub/a/+', '$share/grp/sub/b/#'], { qos: 1 });
      const mine = (await get(b, `/subscriptions/${id}`)) as Record<string, unknown>[];
      expect(mine).toHaveLength(2);
      const plain = mine.find((s) => s['topic'] === 'sub/a/+')!;
      expect(plain).toEqual({ node_id: 1, clientid: id, client_addr: expect.stringMatching(/^127\.0\.0\.1:\d+$/), topic: 'sub/a/+', qos: 1, share: null });
      expect(mine.find((s) => s['share'] === 'grp')).toMatchObject({ qos: 1 });
      const byClient = (await get(b, `/subscriptions?clientid=${id}`)) as unknown[];
      expect(byClient).toHaveLength(2);
      const matched = (await get(b, `/subscriptions?clientid=${id}&_match_topic=sub/a/x`)) as { topic: string }[];
      expect(matched.map((s) => s.topic)).toEqual(['sub/a/+']);
      const shared = (await get(b, `/subscriptions?clientid=${id}&share=grp`)) as unknown[];
      expect(shared).toHaveLength(1);
      await expectError(call(b, 'GET', `/subscriptions/${uniqueId('nobody')}`), 404);
    });

    it('GET /routes and /routes/{topic}', async () => {
      const c = await client(b, { protocolVersion: 4 });
      const filter = `${uniqueId('route')}/+/x`;
      await subscribe(c, filter);
      const routes = (await get(b, '/routes')) as { topic: string; node_id: number }[];
      expect(routes).toContainEqual({ topic: filter, node_id: 1 });
      const topic = filter.replace('+', 'y');
      expect((await get(b, `/routes/${encodeURIComponent(topic)}`)) as unknown[]).toContainEqual({ topic: filter, node_id: 1 });
      expect((await get(b, `/routes/${encodeURIComponent(topic + '/z')}`)) as { topic: string }[]).not.toContainEqual({ topic: filter, node_id: 1 });
    });
  });

  describe('retained messages', () => {
    it('GET /retains and DELETE /retains', async () => {
      const topic = `${uniqueId('ret')}/t`;
      const c = await client(b, { protocolVersion: 5 });
      await c.publishAsync(topic, 'kept', { qos: 1, retain: true });
      const page = (await get(b, `/retains?topic_filter=${encodeURIComponent(topic)}`)) as { items: Record<string, unknown>[]; has_more: boolean };
      expect(page.has_more).toBe(false);
      expect(page.items).toHaveLength(1);
      expect(page.items[0]).toMatchObject({ topic, msg_id: expect.any(Number), publish: { topic, qos: 1, retain: true, payload: Buffer.from('kept').toString('base64') } });
      await expectError(call(b, 'DELETE', '/retains?topic=a/%23'), 400);
      await expectError(call(b, 'DELETE', '/retains'), 400);
      const del = await call(b, 'DELETE', `/retains?topic=${encodeURIComponent(topic)}`);
      expect(del.status).toBe(200);
      expect(del.text).toBe('ok');
      await expectError(call(b, 'DELETE', `/retains?topic=${encodeURIComponent(topic)}`), 404);
      expect(((await get(b, `/retains?topic_filter=${encodeURIComponent(topic)}`)) as { items: unknown[] }).items).toEqual([]);
    });

    it('GET /retains pages with offset and limit', async () => {
      const base = uniqueId('page');
      const c = await client(b, { protocolVersion: 4 });
      for (let i = 0; i < 3; i++) await c.publishAsync(`${base}/${i}`, `m${i}`, { qos: 1, retain: true });
      const first = (await get(b, `/retains?topic_filter=${base}/%23&limit=2`)) as { items: unknown[]; has_more: boolean };
      expect(first.items).toHaveLength(2);
      expect(first.has_more).toBe(true);
      const rest = (await get(b, `/retains?topic_filter=${base}/%23&offset=2&limit=2`)) as { items: unknown[]; has_more: boolean };
      expect(rest.items).toHaveLength(1);
      expect(rest.has_more).toBe(false);
    });
  });

  describe('MQTT actions', () => {
    it('POST /mqtt/publish delivers plain and base64 payloads, to one topic or several', async () => {
      const base = uniqueId('pub');
      const sub = await client(b, { protocolVersion: 5 });
      const rec = recorder(sub);
      await subscribe(sub, `${base}/#`, { qos: 1 });
      const r1 = await call(b, 'POST', '/mqtt/publish', { body: { topic: `${base}/a`, payload: 'hello', qos: 1 } });
      expect(r1.status).toBe(200);
      expect(r1.text).toBe('ok');
      const m1 = await rec.next();
      expect(m1.topic).toBe(`${base}/a`);
      expect(m1.payload.toString()).toBe('hello');
      expect(m1.packet.qos).toBe(1);
      await call(b, 'POST', '/mqtt/publish', { body: { topics: `${base}/b, ${base}/c`, payload: Buffer.from([0, 1, 2]).toString('base64'), encoding: 'base64' } });
      const [mb, mc] = await rec.waitFor(3);
      expect([rec.messages[1]!.topic, rec.messages[2]!.topic].sort()).toEqual([`${base}/b`, `${base}/c`]);
      expect(rec.messages[1]!.payload).toEqual(Buffer.from([0, 1, 2]));
      void mb;
      void mc;
      expect(b.broker.metrics.get('messages.publish.admin')).toBeGreaterThanOrEqual(3);
    });

    it('POST /mqtt/publish with properties and retain', async () => {
      const topic = `${uniqueId('props')}/t`;
      const r = await call(b, 'POST', '/mqtt/publish', {
        body: { topic, payload: 'p', retain: true, properties: { message_expiry_interval: 100, content_type: 'text/plain', user_properties: { k: 'v' } } },
      });
      expect(r.status).toBe(200);
      const sub = await client(b, { protocolVersion: 5 });
      const rec = recorder(sub);
      await subscribe(sub, topic);
      const m = await rec.next();
      expect(m.packet.retain).toBe(true);
      expect(m.packet.properties?.contentType).toBe('text/plain');
      expect(m.packet.properties?.userProperties).toEqual({ k: 'v' });
      expect(m.packet.properties?.messageExpiryInterval).toBeGreaterThan(90);
    });

    it("POST /mqtt/publish with a client's id passes that client's publish ACL; without one it publishes as the system", async () => {
      const id = uniqueId('acl');
      await client(b, { clientId: id, protocolVersion: 5 });
      const sub = await client(b, { protocolVersion: 5 });
      const rec = recorder(sub);
      await subscribe(sub, 'secret/#');
      const publishedBefore = b.broker.metrics.get('messages.publish');
      await expectError(call(b, 'POST', '/mqtt/publish', { body: { topic: 'secret/x', payload: 'no', clientid: id } }), 401, 'ERR_NOT_AUTHORIZED');
      expect(b.broker.metrics.get('messages.publish')).toBe(publishedBefore);
      expect((await call(b, 'POST', '/mqtt/publish', { body: { topic: 'secret/x', payload: 'yes' } })).status).toBe(200);
      expect((await rec.next()).payload.toString()).toBe('yes');
      expect(rec.messages).toHaveLength(1);
    });

    it('POST /mqtt/publish refuses bad input', async () => {
      await expectError(call(b, 'POST', '/mqtt/publish', { raw: '{"topic": "a", "payload": ' }), 400);
      await expectError(call(b, 'POST', '/mqtt/publish', { body: { topic: 'a' } }), 400, 'ERR_BAD_REQUEST');
      await expectError(call(b, 'POST', '/mqtt/publish', { body: { payload: 'x' } }), 400);
      await expectError(call(b, 'POST', '/mqtt/publish', { body: { topic: 'a', payload: 'x', qos: 3 } }), 400);
      await expectError(call(b, 'POST', '/mqtt/publish', { body: { topic: 'a/#', payload: 'x' } }), 400);
      await expectError(call(b, 'POST', '/mqtt/publish', { body: { topic: 'a', payload: 'x', encoding: 'hex' } }), 400);
      await expectError(call(b, 'POST', '/mqtt/publish', { body: { topic: 'a', payload: '!!!', encoding: 'base64' } }), 400);
      await expectError(call(b, 'POST', '/mqtt/publish', { body: { topic: 'a', payload: 'x'.repeat(1024 * 1024 + 10) } }), 413);
    });

    it('POST /mqtt/subscribe and /mqtt/unsubscribe act for a connected client', async () => {
      const id = uniqueId('remote');
      const c = await client(b, { clientId: id, protocolVersion: 4 });
      const rec = recorder(c);
      const topic = `${uniqueId('rs')}/t`;
      const s = await call(b, 'POST', '/mqtt/subscribe', { body: { topics: `${topic},${topic}2`, clientid: id, qos: 1 } });
      expect(s.status).toBe(200);
      expect(s.json()).toEqual({ [topic]: true, [`${topic}2`]: true });
      const pub = await client(b, { protocolVersion: 4 });
      await pub.publishAsync(topic, 'to-remote', { qos: 1 });
      expect((await rec.next()).payload.toString()).toBe('to-remote');
      const u = await call(b, 'POST', '/mqtt/unsubscribe', { body: { topic, clientid: id } });
      expect(u.status).toBe(200);
      expect(u.json()).toBe(true);
      expect(((await get(b, `/subscriptions/${id}`)) as { topic: string }[]).map((x) => x.topic)).toEqual([`${topic}2`]);
      await expectError(call(b, 'POST', '/mqtt/subscribe', { body: { topic, clientid: uniqueId('nobody') } }), 404);
      await expectError(call(b, 'POST', '/mqtt/subscribe', { body: { topic } }), 400);
      await expectError(call(b, 'POST', '/mqtt/unsubscribe', { body: { clientid: id } }), 400);
    });

    it('POST /mqtt/subscribe for an offline session is 503', async () => {
      const id = uniqueId('offline');
      const c = await connectClient(b.url(), { clientId: id, protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 60 } });
      await endClient(c);
      await expectError(call(b, 'POST', '/mqtt/subscribe', { body: { topic: 'x', clientid: id } }), 503, 'ERR_UNAVAILABLE');
    });
  });

  describe('plugins', () => {
    it('GET /plugins, /plugins/{node} and /plugins/{node}/{name}', async () => {
      const all = (await get(b, '/plugins')) as { node: number; plugins: Record<string, unknown>[] }[];
      expect(all).toHaveLength(1);
      expect(all[0]!.node).toBe(1);
      const api = all[0]!.plugins.find((p) => p['name'] === 'http-api')!;
      expect(api).toMatchObject({ name: 'http-api', package: '@rmqtt-ts/plugin-http-api', version: expect.any(String), descr: expect.any(String), inited: true, active: true, immutable: false });
      expect(api['attrs']).toEqual({ http_laddr: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
      expect(all[0]!.plugins.find((p) => p['name'] === 'sys-topic')).toMatchObject({ inited: false, active: false });
      expect((await get(b, '/plugins/1')) as unknown[]).toHaveLength(all[0]!.plugins.length);
      expect(await get(b, '/plugins/1/retainer')).toMatchObject({ name: 'retainer', active: true });
      // RMQTT's names work too
      expect(await get(b, '/plugins/1/rmqtt-retainer')).toMatchObject({ name: 'retainer' });
      await expectError(call(b, 'GET', '/plugins/1/no-such-plugin'), 404, 'ERR_PLUGIN_NOT_FOUND');
      await expectError(call(b, 'GET', '/plugins/2/retainer'), 404);
    });

    it('GET …/config answers the config in force', async () => {
      const cfg = (await get(b, '/plugins/1/http-api/config')) as Record<string, unknown>;
      expect(cfg['max_row_limit']).toBe(10000);
      expect(cfg['http_laddr']).toEqual({ host: '127.0.0.1', port: 0 });
      expect(await get(b, '/plugins/1/retainer/config')).toMatchObject({ max_retained_messages: 0 });
    });

    it('unloading a plugin that refuses (http-api, retainer) is 409 and it stays active', async () => {
      await expectError(call(b, 'PUT', '/plugins/1/http-api/unload'), 409, 'ERR_PLUGIN_REFUSED');
      await expectError(call(b, 'PUT', '/plugins/1/retainer/unload'), 409, 'ERR_PLUGIN_REFUSED');
      expect(await get(b, '/plugins/1/retainer')).toMatchObject({ active: true });
    });

    it('an immutable plugin cannot be unloaded or reloaded at run time (409)', async () => {
      expect(await get(b, '/plugins/1/test-immutable')).toMatchObject({ immutable: true, active: true });
      await expectError(call(b, 'PUT', '/plugins/1/test-immutable/unload'), 409, 'ERR_PLUGIN_IMMUTABLE');
      await expectError(call(b, 'PUT', '/plugins/1/test-immutable/config/reload'), 409, 'ERR_PLUGIN_IMMUTABLE');
      expect(await get(b, '/plugins/1/test-immutable')).toMatchObject({ active: true });
    });

    it('load and unload of an unknown plugin are 404; unloading one that is not started is 409', async () => {
      await expectError(call(b, 'PUT', '/plugins/1/no-such-plugin/load'), 404, 'ERR_PLUGIN_NOT_FOUND');
      await expectError(call(b, 'PUT', '/plugins/1/no-such-plugin/unload'), 404);
      await expectError(call(b, 'PUT', '/plugins/1/sys-topic/unload'), 409, 'ERR_PLUGIN_STATE');
    });

    it('sys-topic unloaded and loaded under traffic: no client is dropped, $SYS stops and restarts', async () => {
      const watcher = await client(b, { protocolVersion: 5 });
      const sys = recorder(watcher);
      await subscribe(watcher, '$SYS/brokers/1/clients/+/connected');
      const pub = await client(b, { protocolVersion: 4 });
      const sub = await client(b, { protocolVersion: 4 });
      const got = recorder(sub);
      const topic = `${uniqueId('traffic')}/t`;
      await subscribe(sub, topic, { qos: 1 });
      let sent = 0;
      let running = true;
      const traffic = (async () => {
        while (running) {
          await pub.publishAsync(topic, String(sent), { qos: 1 });
          sent++;
          await sleep(2);
        }
      })();

      expect((await call(b, 'PUT', '/plugins/1/sys-topic/load')).json()).toBe(true);
      expect(await get(b, '/plugins/1/sys-topic')).toMatchObject({ active: true });
      const seen = uniqueId('seen');
      await endClient(await connectClient(b.url(), { clientId: seen }));
      await expect.poll(() => sys.messages.some((m) => m.topic === `$SYS/brokers/1/clients/${seen}/connected`)).toBe(true);

      // a config reload in the middle of the traffic
      expect((await call(b, 'PUT', '/plugins/1/sys-topic/config/reload')).json()).toBe(true);
      expect((await call(b, 'PUT', '/plugins/1/sys-topic/unload')).json()).toBe(true);
      const unseen = uniqueId('unseen');
      await endClient(await connectClient(b.url(), { clientId: unseen }));
      await sleep(200);
      expect(sys.messages.some((m) => m.topic.includes(unseen))).toBe(false);

      expect((await call(b, 'PUT', '/plugins/1/sys-topic/load')).json()).toBe(true);
      const again = uniqueId('again');
      await endClient(await connectClient(b.url(), { clientId: again }));
      await expect.poll(() => sys.messages.some((m) => m.topic === `$SYS/brokers/1/clients/${again}/connected`)).toBe(true);

      running = false;
      await traffic;
      // every message sent while plugins came and went arrived, in order, on connections that stayed up
      await got.waitFor(sent, 5000);
      expect(got.messages.map((m) => Number(m.payload.toString()))).toEqual([...Array(sent).keys()]);
      for (const c of [watcher, pub, sub]) expect(c.connected).toBe(true);
      expect((await call(b, 'PUT', '/plugins/1/sys-topic/unload')).json()).toBe(true);
    });
  });

  describe('stats and metrics', () => {
    it('GET /stats, /stats/{id} and /stats/sum', async () => {
      const [one] = (await get(b, '/stats')) as { node: unknown; stats: Record<string, number> }[];
      expect(one!.node).toEqual({ id: 1, name: '1@127.0.0.1', running: true });
      for (const k of ['connections.count', 'connections.max', 'sessions.count', 'subscriptions.count', 'retained.count', 'topics.count', 'routes.count']) {
        expect(Number.isFinite(one!.stats[k]), k).toBe(true);
      }
      expect(one!.stats['connections.count']).toBeGreaterThan(0);
      expect(await get(b, '/stats/1')).toMatchObject({ node: { id: 1 }, stats: expect.any(Object) });
      expect(await get(b, '/stats/sum')).toMatchObject({ nodes: { '1': { name: '1@127.0.0.1', running: true } }, stats: expect.any(Object) });
    });

    it('GET /metrics, /metrics/{id} and /metrics/sum', async () => {
      const [one] = (await get(b, '/metrics')) as { node: unknown; metrics: Record<string, number> }[];
      expect(one!.node).toEqual({ id: 1, name: '1@127.0.0.1' });
      for (const k of ['client.connect', 'client.connected', 'messages.publish', 'messages.delivered', 'session.created', 'messages.publish.admin']) {
        expect(Number.isInteger(one!.metrics[k]), k).toBe(true);
      }
      expect(one!.metrics['client.connect']).toBeGreaterThan(0);
      expect(await get(b, '/metrics/1')).toMatchObject({ node: { id: 1 } });
      const sum = (await get(b, '/metrics/sum')) as Record<string, number>;
      expect(sum['client.connect']).toBeGreaterThanOrEqual(one!.metrics['client.connect']!);
    });

    it('GET /metrics/prometheus reads back with a Prometheus parser', async () => {
      const r = await call(b, 'GET', '/metrics/prometheus');
      expect(r.status).toBe(200);
      expect(r.type).toContain('text/plain');
      const families = parsePrometheus(r.text);
      expect(families.map((f) => f.name).sort()).toEqual(['rmqtt_metrics', 'rmqtt_nodes', 'rmqtt_stats']);
      for (const f of families) expect(f.type).toBe('GAUGE');
      const metric = (family: string, item: string, node: string): number | undefined => {
        const m = families.find((f) => f.name === family)?.metrics.find((x) => x.labels?.['item'] === item && x.labels?.['node'] === node);
        return m === undefined ? undefined : Number(m.value);
      };
      expect(metric('rmqtt_metrics', 'client.connect', '1')).toBeGreaterThan(0);
      expect(metric('rmqtt_metrics', 'client.connect', 'all')).toBe(metric('rmqtt_metrics', 'client.connect', '1'));
      expect(metric('rmqtt_stats', 'connections.count', '1')).toBeGreaterThan(0);
      expect(metric('rmqtt_nodes', 'memory_total', '1')).toBeGreaterThan(0);
      expect(metric('rmqtt_nodes', 'running', 'all')).toBe(1);
      const sum = parsePrometheus((await call(b, 'GET', '/metrics/prometheus/sum')).text);
      expect(new Set(sum.flatMap((f) => f.metrics.map((m) => m.labels?.['node'])))).toEqual(new Set(['all']));
      const node = parsePrometheus((await call(b, 'GET', '/metrics/prometheus/1')).text);
      expect(new Set(node.flatMap((f) => f.metrics.map((m) => m.labels?.['node'])))).toEqual(new Set(['1']));
    });
  });
});

describe('http-api bearer token', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker({ config: NODE_1, plugins: [httpApi], pluginsDir: pluginsDir('http_bearer_token = "s3cret"\n') });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('without the header, or with a wrong one, every route is 401', async () => {
    await expectError(call(b, 'GET', '/brokers'), 401);
    await expectError(call(b, 'GET', '/brokers', { headers: { authorization: 'Bearer wrong' } }), 401);
    await expectError(call(b, 'GET', '/brokers', { headers: { authorization: 'bearer s3cret' } }), 401);
    await expectError(call(b, 'PUT', '/plugins/1/http-api/unload'), 401);
    await expectError(call(b, 'POST', '/mqtt/publish', { body: { topic: 'a', payload: 'x' } }), 401);
    // a path spelled with percent-encoding is checked too
    const base = apiBase(b).replace('/api/v1', '');
    const r = await request(`${base}/%61pi/v1/brokers`);
    expect(r.statusCode).toBe(401);
    await r.body.dump();
  });

  it('with the token the API answers, and the token is masked in the config', async () => {
    const auth = { authorization: 'Bearer s3cret' };
    expect((await call(b, 'GET', '/brokers', { headers: auth })).status).toBe(200);
    const cfg = (await call(b, 'GET', '/plugins/1/http-api/config', { headers: auth })).json() as Record<string, unknown>;
    expect(cfg['http_bearer_token']).toBe('******');
  });
});

describe('http-api config', () => {
  it('RMQTT own rmqtt-http-api.toml loads unchanged (history storage named in a warning)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rmqtt-http-api-rmqtt-'));
    dirs.push(dir);
    const { readFileSync } = await import('node:fs');
    // RMQTT's file, moved to a free loopback port
    writeFileSync(join(dir, 'rmqtt-http-api.toml'), readFileSync(RMQTT_HTTP_API_TOML, 'utf8').replace('http_laddr = "0.0.0.0:6060"', 'http_laddr = "127.0.0.1:0"'));
    const warnings: string[] = [];
    const { pino } = await import('pino');
    const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    const b = await startBroker({ config: NODE_1, plugins: [httpApi], pluginsDir: dir, logger: logger as never });
    try {
      expect((await call(b, 'GET', '/brokers/1')).status).toBe(200);
      expect(warnings.join('\n')).toMatch(/not implemented.*storage\.type/);
    } finally {
      await b.stop();
    }
  });

  it('a reload with a bad file answers 400 and the running config stays; a good one applies at once', async () => {
    const dir = pluginsDir('max_row_limit = 2\n');
    const b = await startBroker({ config: NODE_1, plugins: [httpApi], pluginsDir: dir });
    try {
      for (let i = 0; i < 3; i++) await client(b, { clientId: uniqueId('row') });
      expect((await get(b, '/clients')) as unknown[]).toHaveLength(2);
      writeFileSync(join(dir, 'rmqtt-http-api.toml'), 'http_laddr = "127.0.0.1:0"\nmax_row_limit = "many"\n');
      const bad = await expectError(call(b, 'PUT', '/plugins/1/http-api/config/reload'), 400, 'ERR_CONFIG');
      expect(bad.message).toContain('max_row_limit');
      expect((await get(b, '/clients')) as unknown[]).toHaveLength(2);
      writeFileSync(join(dir, 'rmqtt-http-api.toml'), 'http_laddr = "127.0.0.1:0"\nmax_row_limit = 3\n');
      expect((await call(b, 'PUT', '/plugins/1/http-api/config/reload')).json()).toBe(true);
      expect((await get(b, '/clients')) as unknown[]).toHaveLength(3);
    } finally {
      await b.stop();
    }
  });

  it('a reload that changes the server (address, body limit) listens anew first, then closes the old server', async () => {
    const dir = pluginsDir();
    const b = await startBroker({ config: NODE_1, plugins: [httpApi], pluginsDir: dir });
    try {
      const before = apiBase(b);
      writeFileSync(join(dir, 'rmqtt-http-api.toml'), 'http_laddr = "127.0.0.1:0"\nhttp_request_log = true\nhttp_body_limit = "2MB"\n');
      expect((await call(b, 'PUT', '/plugins/1/http-api/config/reload')).json()).toBe(true);
      const after = apiBase(b);
      expect(after).not.toBe(before);
      expect((await request(`${after}/brokers`)).statusCode).toBe(200);
      await sleep(50);
      await expect(request(`${before}/brokers`)).rejects.toThrow();
    } finally {
      await b.stop();
    }
  });
});
