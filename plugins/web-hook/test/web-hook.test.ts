/**
 * web-hook checked at the receiver: a node:http server started here (and files for file:// URLs). Bodies
 * field by field, rules and topic filters, order per client, retries after failures, a slow or dead
 * receiver that never slows MQTT, overflow counted, a denied publish never sent.
 */
import { once } from 'node:events';
import { readFileSync, existsSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, denyPublishTo, endClient, recorder, subscribe, uniqueId, useTestScope, type TestBroker, type TestBrokerOptions } from '@rmqtt-ts/testkit';
import webHook, { EVENTS } from '../src/index.js';

const RMQTT_WEB_HOOK = '/work/shared/reference/rmqtt-configs/plugins/rmqtt-web-hook.toml';

type Body = Record<string, unknown> & { action: string };

class Receiver {
  readonly bodies: Body[] = [];
  attempts = 0;
  /** Answer for one request; default 200. */
  answer: (b: Body, res: ServerResponse) => void = (_b, res) => res.end('ok');
  readonly #server: Server;
  constructor() {
    this.#server = createServer((req, res) => {
      let raw = '';
      req.on('data', (d: Buffer) => (raw += d.toString()));
      req.on('end', () => {
        this.attempts++;
        const b = JSON.parse(raw) as Body;
        const record = (): void => void this.bodies.push(b);
        const orig = res.end.bind(res);
        // a body counts as received when it is answered with 2xx
        res.end = ((...args: unknown[]) => {
          if (res.statusCode >= 200 && res.statusCode < 300) record();
          return orig(...(args as []));
        }) as typeof res.end;
        this.answer(b, res);
      });
    });
  }
  async start(): Promise<this> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    return this;
  }
  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hook`;
  }
  of(action: string, clientid?: string): Body[] {
    return this.bodies.filter((b) => b.action === action && (clientid === undefined || b['clientid'] === clientid || b['from_clientid'] === clientid));
  }
  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((r) => this.#server.close(() => r()));
  }
}

let rx: Receiver;

beforeAll(async () => {
  rx = await new Receiver().start();
});
// vitest runs after-hooks last-registered first: the scope's (clients ended, brokers stopped) before this reset
afterEach(() => {
  rx.bodies.length = 0;
  rx.attempts = 0;
  rx.answer = (_b, res) => res.end('ok');
});
afterAll(async () => {
  await rx.close();
});
const scope = useTestScope();

const ALL_RULES = EVENTS
  .map((e) => `rule.${e} = [{ action = "${e}" }]`)
  .join('\n');

function broker(toml: string, extra: { plugins?: TestBrokerOptions['plugins'] } = {}): Promise<TestBroker> {
  const plugins = [webHook, ...(extra.plugins ?? [])];
  return scope.broker({ config: { 'node.id': 1 }, plugins, files: { 'rmqtt-web-hook.toml': toml } });
}

function client(b: TestBroker, options: Parameters<typeof connectClient>[1] = {}): Promise<MqttClient> {
  return scope.client(b.url(), options);
}

const TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$/;
const FAST = 'http_timeout = "500ms"\nretry_initial_interval = "50ms"\nretry_multiplier = 2.0\nretry_max_elapsed_time = "3s"\n';

describe('event bodies', () => {
  it('a client and its session, from connect to terminated', async () => {
    const b = await broker(`urls = ["${rx.url}"]\n${ALL_RULES}\n`);
    const id = uniqueId('life');
    const c = await connectClient(b.url(), { clientId: id, protocolVersion: 4, username: 'alice', keepalive: 30 });
    await subscribe(c, ['life/+', '$share/g/other/#'], { qos: 1 });
    await c.unsubscribeAsync('life/+');
    await endClient(c);
    await expect.poll(() => rx.of('session_terminated', id).length).toBe(1);
    const addr = expect.stringMatching(/^127\.0\.0\.1:\d+$/);
    const common = { node: 1, ipaddress: addr, clientid: id, username: 'alice', time: expect.stringMatching(TIME) };
    const connectFields = { ...common, keepalive: 30, proto_ver: 4, clean_session: true };
    expect(rx.of('client_connect', id)).toEqual([{ action: 'client_connect', ...connectFields }]);
    expect(rx.of('client_connack', id)).toEqual([{ action: 'client_connack', ...connectFields, conn_ack: 'Connection Accepted' }]);
    expect(rx.of('client_connected', id)).toEqual([{ action: 'client_connected', ...connectFields, connected_at: expect.any(Number), session_present: false }]);
    expect(rx.of('session_created', id)).toEqual([{ action: 'session_created', ...common, created_at: expect.any(Number) }]);
    expect(rx.of('client_subscribe', id)).toEqual([
      { action: 'client_subscribe', ...common, topic: 'life/+', opts: { qos: 1 } },
      { action: 'client_subscribe', ...common, topic: 'other/#', opts: { qos: 1, group: 'g' } },
    ]);
    expect(rx.of('session_subscribed', id).map((x) => x['topic'])).toEqual(['life/+', 'other/#']);
    expect(rx.of('client_unsubscribe', id)).toEqual([{ action: 'client_unsubscribe', ...common, topic: 'life/+' }]);
    expect(rx.of('session_unsubscribed', id)).toEqual([{ action: 'session_unsubscribed', ...common, topic: 'life/+' }]);
    expect(rx.of('client_disconnected', id)).toEqual([{ action: 'client_disconnected', ...common, disconnected_at: expect.any(Number), reason: expect.any(String) }]);
    expect(rx.of('session_terminated', id)).toEqual([{ action: 'session_terminated', ...common, reason: expect.any(String) }]);
    // in the order they happened: one client's events go out one at a time
    const order = rx.bodies.filter((x) => x['clientid'] === id).map((x) => x.action);
    expect(order.indexOf('client_connect')).toBeLessThan(order.indexOf('client_connected'));
    expect(order.indexOf('client_subscribe')).toBeLessThan(order.indexOf('client_unsubscribe'));
    expect(order.at(-1)).toBe('session_terminated');
  });

  it('a v5 client: clean_start, a refused CONNACK text', async () => {
    const b = await broker(`urls = ["${rx.url}"]\n${ALL_RULES}\n`);
    const id = uniqueId('v5');
    await client(b, { clientId: id, protocolVersion: 5 });
    await expect.poll(() => rx.of('client_connected', id).length).toBe(1);
    expect(rx.of('client_connect', id)[0]).toMatchObject({ proto_ver: 5, clean_start: true, username: 'undefined' });
    expect(rx.of('client_connect', id)[0]).not.toHaveProperty('clean_session');
  });

  it('message_publish, message_delivered and message_acked', async () => {
    const b = await broker(`urls = ["${rx.url}"]\n${ALL_RULES}\n`);
    const pubId = uniqueId('pub');
    const subId = uniqueId('sub');
    const sub = await client(b, { clientId: subId, protocolVersion: 5 });
    const rec = recorder(sub);
    await subscribe(sub, 'm/#', { qos: 1 });
    const pub = await client(b, { clientId: pubId, protocolVersion: 5, username: 'bob' });
    await pub.publishAsync('m/1', 'hello', { qos: 1, retain: false });
    await rec.next();
    await expect.poll(() => rx.of('message_acked').length).toBe(1);
    const from = { from_type: 'custom', from_node: 1, from_ipaddress: '127.0.0.1', from_clientid: pubId, from_username: 'bob' };
    const msg = { dup: false, retain: false, qos: 1, topic: 'm/1', packet_id: null, payload: Buffer.from('hello').toString('base64') };
    expect(rx.of('message_publish')).toEqual([{ action: 'message_publish', ...from, ...msg, ts: expect.any(Number), time: expect.stringMatching(TIME) }]);
    const to = { node: 1, ipaddress: expect.stringMatching(/^127\.0\.0\.1:\d+$/), clientid: subId, username: 'undefined' };
    const delivered = { ...from, ...to, ...msg, pts: expect.any(Number), ts: expect.any(Number), time: expect.stringMatching(TIME) };
    expect(rx.of('message_delivered')).toEqual([{ action: 'message_delivered', ...delivered }]);
    expect(rx.of('message_acked')).toEqual([{ action: 'message_acked', ...delivered }]);
  });

  it('offline_message for a persistent session that is away; message_dropped when its queue is full', async () => {
    const b = await broker(`urls = ["${rx.url}"]\n${ALL_RULES}\n`);
    const id = uniqueId('away');
    const s = await connectClient(b.url(), { clientId: id, protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 60 } });
    await subscribe(s, 'off/#', { qos: 1 });
    await endClient(s);
    const pub = await client(b, { protocolVersion: 5 });
    await pub.publishAsync('off/1', 'x', { qos: 1 });
    await expect.poll(() => rx.of('offline_message').length).toBe(1);
    expect(rx.of('offline_message')[0]).toMatchObject({ clientid: id, topic: 'off/1', qos: 1 });
  });
});

describe('rules', () => {
  it('topics filter message events; a rule may have its own urls and action', async () => {
    const dir = scope.dir('rmqtt-web-hook-file-');
    const file = join(dir, 'sub', 'hook.log');
    const b = await broker(
      `urls = ["${rx.url}"]\nrule.message_publish = [{ action = "pub_a", topics = ["a/#"] }, { action = "pub_file", urls = ["file://${file}"] }]\n`,
    );
    const pub = await client(b, { protocolVersion: 4 });
    await pub.publishAsync('a/1', 'x', { qos: 1 });
    await pub.publishAsync('b/1', 'y', { qos: 1 });
    await expect.poll(() => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').length : 0)).toBe(2);
    expect(rx.bodies.map((x) => [x.action, x['topic']])).toEqual([['pub_a', 'a/1']]);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Body);
    expect(lines.map((l) => [l.action, l['topic']])).toEqual([
      ['pub_file', 'a/1'],
      ['pub_file', 'b/1'],
    ]);
  });

  it('"#" in topics does not cover $SYS topics', async () => {
    const b = await broker(`urls = ["${rx.url}"]\nrule.message_publish = [{ action = "p", topics = ["#"] }]\n`);
    await b.broker.control.publish({ topic: '$SYS/x', payload: Buffer.from('s') });
    await b.broker.control.publish({ topic: 'plain', payload: Buffer.from('p') });
    await expect.poll(() => rx.bodies.length).toBe(1);
    expect(rx.bodies[0]!['topic']).toBe('plain');
  });

  it('a denied publish is never sent', async () => {
    const b = await broker(`urls = ["${rx.url}"]\nrule.message_publish = [{ action = "p" }]\n`, { plugins: [denyPublishTo('secret/')] });
    const pub = await client(b, { protocolVersion: 5 });
    // mqtt.js rejects on the PUBACK's 0x87
    await expect(pub.publishAsync('secret/x', 'no', { qos: 1 })).rejects.toThrow(/Not authorized/);
    await pub.publishAsync('open/x', 'yes', { qos: 1 });
    await expect.poll(() => rx.bodies.length).toBe(1);
    expect(rx.bodies[0]!['topic']).toBe('open/x');
  });

  it('a bad rule stops start-up naming the file and the key', async () => {
    await expect(broker('rule.client_teleported = [{ action = "x" }]\n')).rejects.toThrow(/rmqtt-web-hook\.toml: rule: unknown event "client_teleported"/);
    await expect(broker('rule.client_connect = [{ urls = [] }]\n')).rejects.toThrow(/rule: client_connect\[0\]: action: expected a name/);
    await expect(broker('urls = ["ftp://x"]\n')).rejects.toThrow(/urls: \[0\]: expected http:\/\/, https:\/\/ or file:\/\//);
  });

  it("RMQTT's own rmqtt-web-hook.toml loads unchanged", async () => {
    const b = await broker(readFileSync(RMQTT_WEB_HOOK, 'utf8'));
    expect(b.broker.control.plugin('web-hook')).toMatchObject({ active: true, attrs: { rules: 15 } });
  });
});

describe('delivery', () => {
  it('a failed delivery is retried with backoff, and holds back only its own client', async () => {
    const b = await broker(`${FAST}urls = ["${rx.url}"]\nrule.message_publish = [{ action = "p" }]\n`);
    const failFirst = new Set<string>();
    rx.answer = (body, res) => {
      const key = `${String(body['from_clientid'])}:${String(body['payload'])}`;
      if (body['from_clientid'] === 'slowpoke' && !failFirst.has(key)) {
        failFirst.add(key);
        res.statusCode = 500;
        return void res.end();
      }
      res.end('ok');
    };
    const slow = await client(b, { clientId: 'slowpoke', protocolVersion: 5 });
    const quick = await client(b, { clientId: uniqueId('quick'), protocolVersion: 5 });
    for (let i = 0; i < 5; i++) await slow.publishAsync('t', Buffer.from(`s${i}`), { qos: 1 });
    for (let i = 0; i < 5; i++) await quick.publishAsync('t', Buffer.from(`q${i}`), { qos: 1 });
    await expect.poll(() => rx.bodies.length, { timeout: 5000 }).toBe(10);
    const payloads = (who: string): string[] => rx.bodies.filter((x) => x['from_clientid'] === who).map((x) => Buffer.from(String(x['payload']), 'base64').toString());
    // each client's events in order; the retried client's events were held back, not the other's
    expect(payloads('slowpoke')).toEqual(['s0', 's1', 's2', 's3', 's4']);
    expect(payloads(String(quick.options.clientId))).toEqual(['q0', 'q1', 'q2', 'q3', 'q4']);
    const firstSlow = rx.bodies.findIndex((x) => x['from_clientid'] === 'slowpoke');
    expect(firstSlow).toBeGreaterThan(0);
    expect(rx.attempts).toBe(15);
  });

  it('a dead receiver: MQTT goes on at full speed, the overflow is dropped, counted and logged', async () => {
    const dead = await new Receiver().start();
    const url = dead.url;
    await dead.close();
    const b = await broker(`${FAST}queue_capacity = 5\nconcurrency_limit = 1\nurls = ["${url}"]\nrule.message_publish = [{ action = "p" }]\n`);
    const sub = await client(b, { protocolVersion: 5 });
    const rec = recorder(sub);
    await subscribe(sub, 'fast/#', { qos: 1 });
    const pub = await client(b, { protocolVersion: 5 });
    for (let i = 0; i < 200; i++) pub.publish('fast/x', String(i), { qos: 1 });
    await rec.waitFor(200, 5000);
    expect(b.broker.metrics.get('web_hook.dropped')).toBeGreaterThan(150);
    const attrs = b.broker.control.plugin('web-hook')!.attrs as { dropped: number; waiting: number };
    expect(attrs.dropped).toBe(b.broker.metrics.get('web_hook.dropped'));
    expect(attrs.waiting).toBeLessThanOrEqual(5);
  });

  it('a receiver that never answers times out and is retried until retry_max_elapsed_time', async () => {
    const b = await broker(`http_timeout = "200ms"\nretry_initial_interval = "100ms"\nretry_multiplier = 1.0\nretry_max_elapsed_time = "1s"\nurls = ["${rx.url}"]\nrule.client_connected = [{ action = "c" }]\n`);
    rx.answer = () => undefined;
    await client(b, { protocolVersion: 5 });
    await expect.poll(() => b.broker.metrics.get('web_hook.failed'), { timeout: 4000 }).toBe(1);
    // about 1 s of attempts of 200 ms each, 100 ms apart
    expect(rx.attempts).toBeGreaterThanOrEqual(3);
    expect(rx.attempts).toBeLessThanOrEqual(5);
  });

  it('stopped, nothing is sent; started again, events flow', async () => {
    const b = await broker(`urls = ["${rx.url}"]\nrule.client_connected = [{ action = "c" }]\n`);
    expect(await b.broker.control.stopPlugin('web-hook')).toBe(true);
    const quiet = uniqueId('quiet');
    await client(b, { clientId: quiet });
    await new Promise((r) => setTimeout(r, 200));
    expect(rx.bodies).toEqual([]);
    await b.broker.control.startPlugin('web-hook');
    const loud = uniqueId('loud');
    await client(b, { clientId: loud });
    await expect.poll(() => rx.of('c', loud).length).toBe(1);
  });
});
