import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import retainer from '@rmqtt-ts/plugin-retainer';
import { RawClientPool, connectClient, connectTracked, endClient, recorder, startBroker, type PublishOptions, type RawClient, type RawConnectOptions, type TestBroker } from '@rmqtt-ts/testkit';

// ---- helpers (raw clients, closed after every test) ----

const pool = new RawClientPool();

afterEach(() => {
  pool.destroyAll();
});

/** A v5 client unless told, CONNACK 0 required. */
const connect = (port: number, o: RawConnectOptions = {}): Promise<RawClient> => pool.connect(port, { protocolVersion: 5, ...o });

/** Publish and wait for its acknowledgement (retained, and QoS 0 is sent as QoS 1, unless asked). */
const publish = (c: RawClient, topic: string, payload: string, o: PublishOptions = {}) => c.publish(topic, payload, { qos: 1, retain: true, ...o });

let topicSeq = 0;
const uniqueTopic = (): string => `ret${process.pid}-${++topicSeq}`;

// ---- with the retainer ----

describe('retained messages with the retainer', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker({ plugins: [retainer] });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('CONNACK does not say Retain Available 0', async () => {
    const { connack } = await connectTracked(pool, b.port(), { protocolVersion: 5 });
    expect(connack.properties.retainAvailable).not.toBe(0);
  });

  it('[MQTT-3.3.1-5] [MQTT-3.3.1-9] a retained message is sent to a later subscriber with RETAIN=1', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, t, 'kept');
    const s = await connect(b.port());
    expect((await s.subscribe([{ filter: t, qos: 1 }])).reasonCodes).toEqual([1]);
    const m = await s.expect(3);
    expect(m.topic).toBe(t);
    expect(m.payload.toString()).toBe('kept');
    expect(m.retain).toBe(true);
  });

  it('[MQTT-3.3.1-5] a new retained message replaces the previous one of the topic', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, t, 'first');
    await publish(p, t, 'second');
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0 }]);
    const m = await s.expect(3);
    expect(m.payload.toString()).toBe('second');
    await s.expectSilence(200);
  });

  it('[MQTT-3.3.1-6] a retained message with an empty payload deletes the retained message', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, t, 'gone soon');
    await publish(p, t, '');
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0 }]);
    await s.expectSilence(300);
  });

  it('[MQTT-3.3.1-7] a zero-byte retained message is not stored', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, t, '');
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0 }]);
    await s.expectSilence(300);
  });

  it('[MQTT-3.3.1-6] a zero-byte retained message still reaches current subscribers', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0 }]);
    const p = await connect(b.port());
    await publish(p, t, '');
    const m = await s.expect(3);
    expect(m.topic).toBe(t);
    expect(m.payload.length).toBe(0);
  });

  it('a non-retained publish does not replace the retained message', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, t, 'kept');
    await publish(p, t, 'live', { retain: false });
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0 }]);
    expect((await s.expect(3)).payload.toString()).toBe('kept');
    await s.expectSilence(200);
  });

  it('a wildcard subscription gets the retained message of every matching topic', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, `${t}/a`, 'A');
    await publish(p, `${t}/b/c`, 'C');
    await publish(p, `other-${t}`, 'X');
    const s = await connect(b.port());
    await s.subscribe([{ filter: `${t}/#`, qos: 0 }]);
    const got = [await s.expect(3), await s.expect(3)].map((m) => `${m.topic}=${m.payload.toString()}:${m.retain}`).sort();
    expect(got).toEqual([`${t}/a=A:true`, `${t}/b/c=C:true`]);
    await s.expectSilence(200);
  });

  it('[MQTT-4.7.2-1] retained $-topics are not sent to a leading-wildcard subscription', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, `$SYS/${t}`, 'sys');
    const s = await connect(b.port());
    await s.subscribe([{ filter: `+/${t}`, qos: 0 }]);
    await s.expectSilence(300);
    await s.subscribe([{ filter: `$SYS/${t}`, qos: 0 }]);
    expect((await s.expect(3)).topic).toBe(`$SYS/${t}`);
  });

  it('[MQTT-3.3.1-9] retained messages are sent after the SUBACK', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, t, 'kept');
    const s = await connect(b.port());
    s.send({ type: 8, packetId: 9, subscriptions: [{ filter: t, qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }], properties: {} });
    const first = await s.next();
    expect(first?.type).toBe(9);
    expect((await s.expect(3)).retain).toBe(true);
  });

  it('[MQTT-3.3.4-3] a retained message sent on SUBSCRIBE carries that subscription\'s identifier', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, t, 'kept');
    const s = await connect(b.port());
    // an older subscription that also matches, without retained messages of its own
    await s.subscribe([{ filter: `${t}/#`, qos: 0, retainHandling: 2 }], { subscriptionIdentifiers: [5] });
    await s.subscribe([{ filter: t, qos: 1 }], { subscriptionIdentifiers: [42] });
    const m = await s.expect(3);
    expect(m.retain).toBe(true);
    expect(m.properties.subscriptionIdentifiers).toEqual([42]);
  });

  it('[MQTT-3.3.1-9] Retain Handling 0 sends retained messages on every SUBSCRIBE, re-subscribing included', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, t, 'kept');
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0, retainHandling: 0 }]);
    expect((await s.expect(3)).retain).toBe(true);
    await s.subscribe([{ filter: t, qos: 0, retainHandling: 0 }]);
    const again = await s.expect(3);
    expect(again.payload.toString()).toBe('kept');
    expect(again.retain).toBe(true);
  });

  it('[MQTT-3.3.1-10] Retain Handling 1 sends retained messages for a new subscription', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, t, 'kept');
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0, retainHandling: 1 }]);
    const m = await s.expect(3);
    expect(m.payload.toString()).toBe('kept');
    expect(m.retain).toBe(true);
  });

  it('[MQTT-3.3.1-10] Retain Handling 1 does not resend when the subscription already exists', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, t, 'kept');
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0, retainHandling: 1 }]);
    await s.expect(3);
    await s.subscribe([{ filter: t, qos: 1, retainHandling: 1 }]);
    await s.expectSilence(300);
  });

  it('[MQTT-3.3.1-10] Retain Handling 1 sends again after the subscription was removed and made anew', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, t, 'kept');
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0, retainHandling: 1 }]);
    await s.expect(3);
    expect((await s.unsubscribe(t)).reasonCodes).toEqual([0]);
    await s.subscribe([{ filter: t, qos: 0, retainHandling: 1 }]);
    expect((await s.expect(3)).payload.toString()).toBe('kept');
  });

  it('[MQTT-3.3.1-10] Retain Handling 1 does not resend for a subscription kept in a resumed session', async () => {
    const t = uniqueTopic();
    const id = `ret-rh1-${process.pid}-${t}`;
    const p = await connect(b.port());
    await publish(p, t, 'kept');
    const s = await connect(b.port(), { clientId: id, properties: { sessionExpiryInterval: 30 } });
    await s.subscribe([{ filter: t, qos: 0, retainHandling: 1 }]);
    await s.expect(3);
    await s.disconnect();
    const { client: back, connack } = await connectTracked(pool, b.port(), { protocolVersion: 5, clientId: id, cleanStart: false, properties: { sessionExpiryInterval: 0 } });
    expect(connack.sessionPresent).toBe(true);
    await back.subscribe([{ filter: t, qos: 0, retainHandling: 1 }]);
    await back.expectSilence(300);
  });

  it('[MQTT-3.3.1-11] Retain Handling 2 never sends retained messages', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, t, 'kept');
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0, retainHandling: 2 }]);
    await s.expectSilence(300);
  });

  it('[MQTT-3.3.1-11] Retain Handling 2 still delivers live messages', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, t, 'kept');
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0, retainHandling: 2 }]);
    await publish(p, t, 'live', { retain: false });
    const m = await s.expect(3);
    expect(m.payload.toString()).toBe('live');
  });

  it('a retained message is sent at min(stored QoS, granted QoS): granted lower', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, t, 'q2', { qos: 2 });
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 1 }]);
    const m = await s.expect(3);
    expect(m.qos).toBe(1);
    expect(m.packetId).toBeGreaterThan(0);
  });

  it('a retained message is sent at min(stored QoS, granted QoS): stored lower', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, t, 'q0', { qos: 0 });
    // a QoS 0 publish has no ack: a retained QoS 1 message on another topic orders it
    await publish(p, `${t}/sync`, 's', { qos: 1 });
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 2 }]);
    const m = await s.expect(3);
    expect(m.payload.toString()).toBe('q0');
    expect(m.qos).toBe(0);
  });

  it('no retained messages are sent on a $share subscription', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, t, 'kept');
    const s = await connect(b.port());
    expect((await s.subscribe([{ filter: `$share/g/${t}`, qos: 1 }])).reasonCodes).toEqual([1]);
    await s.expectSilence(300);
    // the shared subscription itself works
    await publish(p, t, 'live', { retain: false });
    expect((await s.expect(3)).payload.toString()).toBe('live');
  });

  it('[MQTT-3.3.1-9] a v3.1.1 client gets retained messages with RETAIN=1', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port(), { protocolVersion: 4 });
    await publish(p, t, 'from v3');
    const s = await connect(b.port(), { protocolVersion: 4 });
    expect((await s.subscribe([{ filter: t, qos: 1 }])).reasonCodes).toEqual([1]);
    const m = await s.expect(3);
    expect(m.payload.toString()).toBe('from v3');
    expect(m.retain).toBe(true);
  });

  it('[MQTT-3.3.1-9] a v3.1.1 client gets live retained messages with RETAIN=0', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port(), { protocolVersion: 4 });
    await s.subscribe([{ filter: t, qos: 0 }]);
    const p = await connect(b.port());
    await publish(p, t, 'live');
    const m = await s.expect(3);
    expect(m.retain).toBe(false);
  });

  it('an mqtt.js v5 client gets the retained message with the retain flag', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, t, 'kept', { properties: { contentType: 'text/plain', userProperties: [['k', 'v']] } });
    const c = await connectClient(b.url(), { protocolVersion: 5 });
    try {
      const rec = recorder(c);
      await c.subscribeAsync(t, { qos: 1 });
      const m = await rec.next();
      expect(m.payload.toString()).toBe('kept');
      expect(m.packet.retain).toBe(true);
      expect(m.packet.properties?.contentType).toBe('text/plain');
      expect(m.packet.properties?.userProperties).toEqual({ k: 'v' });
    } finally {
      await endClient(c, true);
    }
  });
});

describe('retained message expiry', () => {
  let b: TestBroker;
  beforeAll(async () => {
    // a 1 s default expiry for v3 messages: it must not apply to what is retained
    b = await startBroker({ plugins: [retainer], listeners: { 'tcp.external': { message_expiry_interval: '1s' } } });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('retained messages never expire by default (not even by message_expiry_interval)', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port(), { protocolVersion: 4 });
    await publish(p, t, 'v3 kept');
    await sleep(2100);
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0 }]);
    const m = await s.expect(3);
    expect(m.payload.toString()).toBe('v3 kept');
    // the broker's default expiry is never written into a v5 PUBLISH
    expect(m.properties.messageExpiryInterval).toBeUndefined();
  });

  it('[MQTT-3.3.2-5] a retained v5 message is not sent after its Message Expiry Interval', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, t, 'short', { properties: { messageExpiryInterval: 1 } });
    await sleep(1600);
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0 }]);
    await s.expectSilence(300);
  });

  it('[MQTT-3.3.2-6] a retained v5 message is sent with the remaining expiry interval', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port());
    await publish(p, t, 'long', { properties: { messageExpiryInterval: 10 } });
    await sleep(1200);
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0 }]);
    const m = await s.expect(3);
    expect(m.payload.toString()).toBe('long');
    const left = m.properties.messageExpiryInterval!;
    expect(left).toBeGreaterThanOrEqual(8);
    expect(left).toBeLessThanOrEqual(9);
  });
});

// ---- without the retainer ----

describe('without the retainer', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker();
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('[MQTT-3.2.2-13] CONNACK says Retain Available 0', async () => {
    const { connack } = await connectTracked(pool, b.port(), { protocolVersion: 5 });
    expect(connack.reasonCode).toBe(0);
    expect(connack.properties.retainAvailable).toBe(0);
  });

  it('[MQTT-3.2.2-14] a v5 PUBLISH with RETAIN=1 gets DISCONNECT 0x9A', async () => {
    const p = await connect(b.port());
    p.send({ type: 3, topic: uniqueTopic(), payload: Buffer.from('r'), qos: 1, retain: true, dup: false, packetId: 3, properties: {} });
    const before = await p.expectClose();
    expect(before).toHaveLength(1);
    expect(before[0]).toMatchObject({ type: 14, reasonCode: 0x9a });
  });

  it('[MQTT-3.2.2-14] a rejected v5 retained PUBLISH is not delivered', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0 }]);
    const p = await connect(b.port());
    p.send({ type: 3, topic: t, payload: Buffer.from('r'), qos: 0, retain: true, dup: false, packetId: undefined, properties: {} });
    await p.expectClose();
    await s.expectSilence(300);
  });

  it('[MQTT-3.2.2-13] a v5 CONNECT with Will Retain gets CONNACK 0x9A', async () => {
    const { client, connack } = await connectTracked(pool, b.port(), {
      protocolVersion: 5,
      will: { topic: 'w', payload: Buffer.from('x'), qos: 0, retain: true, properties: {} },
    });
    expect(connack.reasonCode).toBe(0x9a);
    await client.expectClose();
  });

  it('a v3 retained publish is delivered as non-retained to current subscribers', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    // Retain As Published would show RETAIN=1 if the broker had kept the flag
    await s.subscribe([{ filter: t, qos: 0, retainAsPublished: true }]);
    const p = await connect(b.port(), { protocolVersion: 4 });
    await publish(p, t, 'v3');
    const m = await s.expect(3);
    expect(m.payload.toString()).toBe('v3');
    expect(m.retain).toBe(false);
  });

  it('a v3 retained publish is not stored', async () => {
    const t = uniqueTopic();
    const p = await connect(b.port(), { protocolVersion: 4 });
    await publish(p, t, 'v3');
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0 }]);
    await s.expectSilence(300);
  });
});
