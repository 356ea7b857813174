/**
 * $SYS topics through a broker, read by real MQTT clients: each event's payload field by field, the
 * periodic stats and metrics, publish_qos, publish_interval, message_expiry_interval, and stop/start.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { connectClient, endClient, recorder, subscribe, uniqueId, useTestScope, type Received, type TestBroker } from '@rmqtt-ts/testkit';
import sysTopic, { eventTime, topicLevel } from './index.js';

/** The node id the expectations below name (the shipped config's; the built-in default is 0). */
const NODE_1 = { 'node.id': 1 };
const RMQTT_SYS_TOPIC_TOML = '/work/shared/reference/rmqtt-configs/plugins/rmqtt-sys-topic.toml';

const scope = useTestScope();

function broker(toml = ''): Promise<TestBroker> {
  return scope.broker({ config: NODE_1, plugins: [sysTopic], files: { 'rmqtt-sys-topic.toml': toml } });
}

function client(b: TestBroker, options: Parameters<typeof connectClient>[1] = {}): Promise<MqttClient> {
  return scope.client(b.url(), options);
}

/**
 * Connect with a recorder attached before CONNACK, so that messages a resumed session gets right after
 * it (in the same read) are recorded too.
 */
async function resume(b: TestBroker, options: IClientOptions): Promise<ReturnType<typeof recorder>> {
  const c = scope.endAfterEach(mqtt.connect(b.url(), { reconnectPeriod: 0, ...options }));
  const rec = recorder(c);
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  return rec;
}

/** The first message on `topic`, its payload parsed. */
async function jsonOn(rec: { messages: Received[] }, topic: string): Promise<{ m: Received; body: Record<string, unknown> }> {
  await expect.poll(() => rec.messages.some((m) => m.topic === topic), { timeout: 3000 }).toBe(true);
  const m = rec.messages.find((x) => x.topic === topic)!;
  return { m, body: JSON.parse(m.payload.toString()) as Record<string, unknown> };
}

const TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$/;

describe('sys-topic events', () => {
  it('clients/{id}/connected and …/disconnected (3.1.1: clean_session)', async () => {
    const b = await broker();
    const watcher = await client(b, { protocolVersion: 5 });
    const watch = recorder(watcher);
    await subscribe(watcher, '$SYS/brokers/1/clients/#', { qos: 1 });
    const id = uniqueId('c4');
    const before = Date.now();
    const c = await connectClient(b.url(), { clientId: id, protocolVersion: 4, username: 'bob', keepalive: 25 });
    const { m, body } = await jsonOn(watch, `$SYS/brokers/1/clients/${id}/connected`);
    expect(m.packet.qos).toBe(1);
    expect(m.packet.retain).toBe(false);
    expect(body).toEqual({
      node: 1,
      ipaddress: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      clientid: id,
      username: 'bob',
      keepalive: 25,
      proto_ver: 4,
      clean_session: true,
      connected_at: expect.any(Number),
      session_present: false,
      time: expect.stringMatching(TIME),
    });
    expect(body['connected_at'] as number).toBeGreaterThanOrEqual(before - 1000);
    await endClient(c);
    const d = await jsonOn(watch, `$SYS/brokers/1/clients/${id}/disconnected`);
    expect(d.body).toEqual({
      node: 1,
      ipaddress: body['ipaddress'],
      clientid: id,
      username: 'bob',
      disconnected_at: expect.any(Number),
      reason: expect.any(String),
      time: expect.stringMatching(TIME),
    });
    expect((d.body['reason'] as string).length).toBeGreaterThan(0);
  });

  it('a v5 client is reported with clean_start, and a missing username as "undefined"', async () => {
    const b = await broker();
    const watcher = await client(b, { protocolVersion: 5 });
    const watch = recorder(watcher);
    await subscribe(watcher, '$SYS/brokers/1/clients/+/connected');
    const id = uniqueId('c5');
    await client(b, { clientId: id, protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 30 } });
    const { body } = await jsonOn(watch, `$SYS/brokers/1/clients/${id}/connected`);
    expect(body).toMatchObject({ proto_ver: 5, clean_start: false, username: 'undefined' });
    expect(body).not.toHaveProperty('clean_session');
  });

  it('session/{id}/created, subscribed, unsubscribed and terminated', async () => {
    const b = await broker();
    const watcher = await client(b, { protocolVersion: 5 });
    const watch = recorder(watcher);
    await subscribe(watcher, '$SYS/brokers/1/session/#');
    const id = uniqueId('sess');
    const c = await connectClient(b.url(), { clientId: id, protocolVersion: 5 });
    const created = await jsonOn(watch, `$SYS/brokers/1/session/${id}/created`);
    expect(created.body).toEqual({ node: 1, ipaddress: expect.stringMatching(/^127\.0\.0\.1:\d+$/), clientid: id, username: 'undefined', created_at: expect.any(Number), time: expect.stringMatching(TIME) });

    await subscribe(c, 'a/+', { qos: 2, nl: true });
    const sub = await jsonOn(watch, `$SYS/brokers/1/session/${id}/subscribed`);
    expect(sub.body).toEqual({
      node: 1,
      ipaddress: created.body['ipaddress'],
      clientid: id,
      username: 'undefined',
      topic: 'a/+',
      opts: { qos: 2, no_local: true, retain_as_published: false, retain_handling: 0 },
      time: expect.stringMatching(TIME),
    });
    await c.subscribeAsync('$share/g1/b/#', { qos: 1 });
    await expect.poll(() => watch.messages.filter((m) => m.topic.endsWith(`/${id}/subscribed`)).length).toBe(2);
    const shared = JSON.parse(watch.messages.filter((m) => m.topic.endsWith(`/${id}/subscribed`))[1]!.payload.toString()) as Record<string, unknown>;
    // the filter without its $share prefix; the group in opts
    expect(shared).toMatchObject({ topic: 'b/#', opts: { qos: 1, group: 'g1' } });

    await c.unsubscribeAsync('a/+');
    const unsub = await jsonOn(watch, `$SYS/brokers/1/session/${id}/unsubscribed`);
    expect(unsub.body).toEqual({ node: 1, ipaddress: created.body['ipaddress'], clientid: id, username: 'undefined', topic: 'a/+', time: expect.stringMatching(TIME) });

    await endClient(c);
    const term = await jsonOn(watch, `$SYS/brokers/1/session/${id}/terminated`);
    expect(term.body).toEqual({ node: 1, ipaddress: created.body['ipaddress'], clientid: id, username: 'undefined', reason: expect.any(String), time: expect.stringMatching(TIME) });
  });

  it('a client id with /, +, # or % stays one topic level', async () => {
    const b = await broker();
    const watcher = await client(b, { protocolVersion: 5 });
    const watch = recorder(watcher);
    await subscribe(watcher, '$SYS/brokers/1/clients/+/connected');
    const id = `${uniqueId('odd')}/x+y#z%w`;
    await client(b, { clientId: id, protocolVersion: 5 });
    const encoded = topicLevel(id);
    expect(encoded).not.toMatch(/[/+#]/);
    expect(encoded).toContain('%2F');
    const { body } = await jsonOn(watch, `$SYS/brokers/1/clients/${encoded}/connected`);
    expect(body['clientid']).toBe(id);
  });
});

describe('sys-topic periodic messages and config', () => {
  it('stats and metrics every publish_interval at publish_qos', async () => {
    const b = await broker('publish_interval = "1s"\npublish_qos = 0\n');
    const watcher = await client(b, { protocolVersion: 5 });
    const watch = recorder(watcher);
    await subscribe(watcher, ['$SYS/brokers/1/stats', '$SYS/brokers/1/metrics'], { qos: 1 });
    const stats = await jsonOn(watch, '$SYS/brokers/1/stats');
    expect(stats.m.packet.qos).toBe(0);
    expect(stats.body['connections.count']).toBeGreaterThanOrEqual(1);
    for (const k of ['sessions.count', 'sessions.max', 'subscriptions.count', 'retained.count', 'topics.count']) expect(Number.isFinite(stats.body[k]), k).toBe(true);
    const metrics = await jsonOn(watch, '$SYS/brokers/1/metrics');
    expect(metrics.body['client.connect']).toBeGreaterThanOrEqual(1);
    expect(Number.isInteger(metrics.body['messages.publish.system'])).toBe(true);
    // a second round a second later
    await expect.poll(() => watch.messages.filter((m) => m.topic === '$SYS/brokers/1/stats').length, { timeout: 3000 }).toBeGreaterThanOrEqual(2);
    expect(b.broker.metrics.get('messages.publish.system')).toBeGreaterThanOrEqual(2);
  });

  it('message_expiry_interval: messages queued for an offline session expire', async () => {
    const b = await broker('message_expiry_interval = "1s"\n');
    const id = uniqueId('late');
    const s = await connectClient(b.url(), { clientId: id, protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 60 } });
    await subscribe(s, '$SYS/brokers/1/clients/+/connected', { qos: 1 });
    await endClient(s);
    // two events while the subscriber is away
    await endClient(await connectClient(b.url(), { clientId: uniqueId('x') }));
    await endClient(await connectClient(b.url(), { clientId: uniqueId('y') }));
    await sleep(1600);
    const rec = await resume(b, { clientId: id, protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 60 } });
    await sleep(300);
    // only its own connect event (published after it returned) may arrive
    expect(rec.messages.map((m) => m.topic)).toEqual(rec.messages.length === 0 ? [] : [`$SYS/brokers/1/clients/${id}/connected`]);
  });

  it('message_expiry_interval = 0: queued messages wait for the session', async () => {
    const b = await broker('message_expiry_interval = "0"\n');
    const id = uniqueId('keep');
    const s = await connectClient(b.url(), { clientId: id, protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 60 } });
    await subscribe(s, '$SYS/brokers/1/clients/+/connected', { qos: 1 });
    await endClient(s);
    const other = uniqueId('other');
    await endClient(await connectClient(b.url(), { clientId: other }));
    await sleep(1200);
    const rec = await resume(b, { clientId: id, protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 60 } });
    await expect.poll(() => rec.messages.some((m) => m.topic === `$SYS/brokers/1/clients/${other}/connected`)).toBe(true);
  });

  it('stopped, nothing is published; started again, events flow', async () => {
    const b = await broker();
    const watcher = await client(b, { protocolVersion: 5 });
    const watch = recorder(watcher);
    await subscribe(watcher, '$SYS/brokers/1/clients/+/connected');
    expect(await b.broker.control.stopPlugin('sys-topic')).toBe(true);
    const quiet = uniqueId('quiet');
    await endClient(await connectClient(b.url(), { clientId: quiet }));
    await sleep(200);
    expect(watch.messages.some((m) => m.topic.includes(quiet))).toBe(false);
    await b.broker.control.startPlugin('sys-topic');
    const loud = uniqueId('loud');
    await endClient(await connectClient(b.url(), { clientId: loud }));
    await jsonOn(watch, `$SYS/brokers/1/clients/${loud}/connected`);
  });

  it('a reload changes publish_qos at once', async () => {
    const dir = scope.dir('rmqtt-sys-topic-');
    writeFileSync(join(dir, 'rmqtt-sys-topic.toml'), 'publish_qos = 0\n');
    const b = await scope.broker({ config: NODE_1, plugins: [sysTopic], pluginsDir: dir });
    const watcher = await client(b, { protocolVersion: 5 });
    const watch = recorder(watcher);
    await subscribe(watcher, '$SYS/brokers/1/clients/+/connected', { qos: 2 });
    const a = uniqueId('q0');
    await client(b, { clientId: a });
    expect((await jsonOn(watch, `$SYS/brokers/1/clients/${a}/connected`)).m.packet.qos).toBe(0);
    writeFileSync(join(dir, 'rmqtt-sys-topic.toml'), 'publish_qos = 2\n');
    await b.broker.control.reloadPlugin('sys-topic');
    const c = uniqueId('q2');
    await client(b, { clientId: c });
    expect((await jsonOn(watch, `$SYS/brokers/1/clients/${c}/connected`)).m.packet.qos).toBe(2);
  });

  it("RMQTT's rmqtt-sys-topic.toml loads unchanged", async () => {
    const b = await broker(readFileSync(RMQTT_SYS_TOPIC_TOML, 'utf8'));
    expect(b.broker.control.plugin('sys-topic')).toMatchObject({ active: true, attrs: { publish_qos: 1, publish_interval_ms: 60000 } });
  });

  it('a bad value stops the start naming the file and the key', async () => {
    await expect(broker('publish_qos = 3\n')).rejects.toThrow(/rmqtt-sys-topic\.toml: publish_qos/);
  });

  it('eventTime writes local time with milliseconds', () => {
    const d = new Date(2024, 0, 2, 3, 4, 5, 6);
    expect(eventTime(d.getTime())).toBe('2024-01-02 03:04:05.006');
  });
});
