import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import retainer from '@rmqtt-ts/plugin-retainer';
import { RawClientPool, startBroker, type RawClient, type RawConnectOptions, type TestBroker } from '@rmqtt-ts/testkit';
import type { Packet, PublishPacket } from '@rmqtt-ts/kernel';

// ---- helpers (raw clients, closed after every test) ----

const pool = new RawClientPool();

afterEach(() => {
  pool.destroyAll();
});

/** A v5 client unless told, CONNACK 0 required. */
const connect = (port: number, o: RawConnectOptions = {}): Promise<RawClient> => pool.connect(port, { protocolVersion: 5, ...o });

let topicSeq = 0;
const uniqueTopic = (): string => `subs${process.pid}-${++topicSeq}`;

function asPublish(p: Packet | null): PublishPacket {
  if (p === null || p.type !== 3) throw new Error(`expected PUBLISH, got ${p === null ? 'close' : `type ${p.type}`}`);
  return p;
}

// ---- overlapping subscriptions ----

describe('overlapping subscriptions of one client', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker({ plugins: [retainer] });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('[MQTT-3.3.4-2] a message matching two subscriptions arrives once, at the highest granted QoS', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    const p = await connect(b.port());
    expect((await s.subscribe([{ filter: `${t}/#`, qos: 0 }])).reasonCodes).toEqual([0]);
    expect((await s.subscribe([{ filter: `${t}/+`, qos: 2 }])).reasonCodes).toEqual([2]);
    await p.publish(`${t}/x`, 'm', { qos: 2 });
    const m = await s.expect(3);
    expect(m.topic).toBe(`${t}/x`);
    expect(m.qos).toBe(2);
    expect(m.payload.toString()).toBe('m');
    await s.expectSilence(300);
  });

  it('[MQTT-3.3.4-3] the single copy carries the Subscription Identifier of every matching subscription', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    const p = await connect(b.port());
    await s.subscribe([{ filter: `${t}/#`, qos: 0 }], { subscriptionIdentifiers: [1] });
    await s.subscribe([{ filter: `${t}/+`, qos: 2 }], { subscriptionIdentifiers: [2] });
    await p.publish(`${t}/x`, 'm', { qos: 2 });
    const m = await s.expect(3);
    expect(m.qos).toBe(2);
    expect([...(m.properties.subscriptionIdentifiers ?? [])].sort()).toEqual([1, 2]);
    await s.expectSilence(300);
  });

  it('[MQTT-3.3.4-3] only the identifiers of subscriptions that match are sent', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    const p = await connect(b.port());
    await s.subscribe([{ filter: `${t}/#`, qos: 1 }], { subscriptionIdentifiers: [7] });
    await s.subscribe([{ filter: `${t}/other`, qos: 1 }], { subscriptionIdentifiers: [8] });
    await p.publish(`${t}/x`, 'm', { qos: 1 });
    const m = await s.expect(3);
    expect(m.properties.subscriptionIdentifiers).toEqual([7]);
  });

  it('[MQTT-3.8.3-3] No Local matches are removed before merging: QoS and identifiers come from the rest', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    await s.subscribe([{ filter: `${t}/#`, qos: 2, noLocal: true }], { subscriptionIdentifiers: [1] });
    await s.subscribe([{ filter: `${t}/+`, qos: 0 }], { subscriptionIdentifiers: [2] });
    s.send({ type: 3, topic: `${t}/x`, payload: Buffer.from('own'), qos: 2, retain: false, dup: false, packetId: 77, properties: {} });
    const got = [await s.next(), await s.next()];
    const m = asPublish(got.find((x) => x?.type === 3) ?? null);
    expect(got.some((x) => x?.type === 5)).toBe(true);
    expect(m.qos).toBe(0);
    expect(m.properties.subscriptionIdentifiers).toEqual([2]);
    s.send({ type: 6, packetId: 77, reasonCode: 0, properties: {} });
    await s.expect(7);
    await s.expectSilence(300);
  });

  it('RETAIN is kept when any of the matching subscriptions has Retain As Published', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    const p = await connect(b.port());
    await s.subscribe([
      { filter: `${t}/#`, qos: 0, retainAsPublished: false },
      { filter: `${t}/+`, qos: 0, retainAsPublished: true },
    ]);
    await p.publish(`${t}/x`, 'r', { qos: 1, retain: true });
    const m = await s.expect(3);
    expect(m.retain).toBe(true);
    await s.expectSilence(300);
  });

  it('RETAIN is cleared when the only Retain As Published match is a No Local one that was removed', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    await s.subscribe([
      { filter: `${t}/#`, qos: 0, noLocal: true, retainAsPublished: true },
      { filter: `${t}/+`, qos: 0, retainAsPublished: false },
    ]);
    s.send({ type: 3, topic: `${t}/x`, payload: Buffer.from('own'), qos: 0, retain: true, dup: false, packetId: undefined, properties: {} });
    const m = await s.expect(3);
    expect(m.topic).toBe(`${t}/x`);
    expect(m.retain).toBe(false);
    await s.expectSilence(300);
  });
});

// ---- $-topics, No Local, Retain As Published ----

describe('topic matching', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker();
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('[MQTT-4.7.2-1] a leading # does not match a $-topic', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    const p = await connect(b.port());
    await s.subscribe([{ filter: '#', qos: 0 }]);
    await p.publish(`$SYS/${t}`, 'sys', { qos: 1 });
    await p.publish(`ctl/${t}`, 'ctl', { qos: 1 });
    const m = await s.expect(3);
    expect(m.topic).toBe(`ctl/${t}`);
    await s.expectSilence(200);
  });

  it('[MQTT-4.7.2-1] a leading + does not match a $-topic', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    const p = await connect(b.port());
    await s.subscribe([{ filter: `+/${t}`, qos: 0 }]);
    await p.publish(`$SYS/${t}`, 'sys', { qos: 1 });
    await p.publish(`ctl/${t}`, 'ctl', { qos: 1 });
    const m = await s.expect(3);
    expect(m.topic).toBe(`ctl/${t}`);
    await s.expectSilence(200);
  });

  it('[MQTT-4.7.2-1] $SYS/# matches $SYS topics', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    const p = await connect(b.port());
    await s.subscribe([{ filter: '$SYS/#', qos: 0 }]);
    await p.publish(`$SYS/${t}`, 'sys', { qos: 1 });
    const m = await s.expect(3);
    expect(m.topic).toBe(`$SYS/${t}`);
    expect(m.payload.toString()).toBe('sys');
  });

  it('[MQTT-3.8.3-3] a No Local subscription does not get the client\'s own publishes', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    const p = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 1, noLocal: true }]);
    await s.publish(t, 'own', { qos: 1 });
    await p.publish(t, 'other', { qos: 1 });
    const m = await s.expect(3);
    expect(m.payload.toString()).toBe('other');
    s.send({ type: 4, packetId: m.packetId!, reasonCode: 0, properties: {} });
    await s.expectSilence(200);
  });

  it('without No Local a client gets its own publishes', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0 }]);
    s.send({ type: 3, topic: t, payload: Buffer.from('own'), qos: 0, retain: false, dup: false, packetId: undefined, properties: {} });
    const m = await s.expect(3);
    expect(m.payload.toString()).toBe('own');
  });
});

describe('Retain As Published', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker({ plugins: [retainer] });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('[MQTT-3.3.1-12] without Retain As Published a live retained message arrives with RETAIN=0', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    const p = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0, retainAsPublished: false }]);
    await p.publish(t, 'r', { qos: 1, retain: true });
    const m = await s.expect(3);
    expect(m.payload.toString()).toBe('r');
    expect(m.retain).toBe(false);
  });

  it('[MQTT-3.3.1-13] with Retain As Published a live retained message keeps RETAIN=1', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    const p = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0, retainAsPublished: true }]);
    await p.publish(t, 'r', { qos: 1, retain: true });
    const m = await s.expect(3);
    expect(m.payload.toString()).toBe('r');
    expect(m.retain).toBe(true);
  });

  it('[MQTT-3.3.1-13] with Retain As Published a non-retained message arrives with RETAIN=0', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    const p = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0, retainAsPublished: true }]);
    await p.publish(t, 'n', { qos: 1, retain: false });
    const m = await s.expect(3);
    expect(m.retain).toBe(false);
  });
});

// ---- SUBACK codes ----

describe('SUBACK reason codes', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker();
  });
  afterAll(async () => {
    await b?.stop();
  });

  for (const filter of ['a/#/b', 'a+', '', '#/a', 'a/b#']) {
    it(`[MQTT-4.7.1-1] invalid filter ${JSON.stringify(filter)} gets 0x8F (v5)`, async () => {
      const c = await connect(b.port());
      expect((await c.subscribe([{ filter, qos: 1 }])).reasonCodes).toEqual([0x8f]);
      // the connection stays usable
      expect((await c.subscribe([{ filter: uniqueTopic(), qos: 1 }])).reasonCodes).toEqual([1]);
    });

    it(`[MQTT-3.9.3-2] invalid filter ${JSON.stringify(filter)} gets 0x80 (v3.1.1)`, async () => {
      const c = await connect(b.port(), { protocolVersion: 4 });
      expect((await c.subscribe([{ filter, qos: 1 }])).reasonCodes).toEqual([0x80]);
    });
  }

  it('[MQTT-3.8.4-6] [MQTT-3.9.3-1] SUBACK has one code per filter, in the order of the SUBSCRIBE', async () => {
    const t = uniqueTopic();
    const c = await connect(b.port());
    const ack = await c.subscribe([
      { filter: `${t}/q2`, qos: 2 },
      { filter: 'a/#/b', qos: 1 },
      { filter: `${t}/q0`, qos: 0 },
      { filter: 'a+', qos: 2 },
      { filter: `${t}/q1`, qos: 1 },
    ]);
    expect(ack.reasonCodes).toEqual([2, 0x8f, 0, 0x8f, 1]);
  });

  it('[MQTT-3.8.4-6] valid filters of a SUBSCRIBE with an invalid one are subscribed', async () => {
    const t = uniqueTopic();
    const c = await connect(b.port());
    const p = await connect(b.port());
    await c.subscribe([
      { filter: 'a/#/b', qos: 1 },
      { filter: `${t}/+`, qos: 1 },
    ]);
    await p.publish(`${t}/x`, 'm', { qos: 1 });
    const m = await c.expect(3);
    expect(m.topic).toBe(`${t}/x`);
  });

  it('[MQTT-3.9.3-2] a v3.1.1 SUBACK carries the granted QoS of valid filters beside 0x80', async () => {
    const t = uniqueTopic();
    const c = await connect(b.port(), { protocolVersion: 4 });
    const ack = await c.subscribe([
      { filter: `${t}/a`, qos: 2 },
      { filter: 'a+', qos: 1 },
      { filter: `${t}/b`, qos: 1 },
    ]);
    expect(ack.reasonCodes).toEqual([2, 0x80, 1]);
  });
});

describe('max_subscriptions', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker({ listeners: { 'tcp.external': { max_subscriptions: 2 } } });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('a subscription over max_subscriptions gets 0x97 Quota Exceeded (v5)', async () => {
    const t = uniqueTopic();
    const c = await connect(b.port());
    const ack = await c.subscribe([
      { filter: `${t}/1`, qos: 1 },
      { filter: `${t}/2`, qos: 1 },
      { filter: `${t}/3`, qos: 1 },
    ]);
    expect(ack.reasonCodes).toEqual([1, 1, 0x97]);
  });

  it('a subscription over max_subscriptions gets 0x80 (v3.1.1)', async () => {
    const t = uniqueTopic();
    const c = await connect(b.port(), { protocolVersion: 4 });
    const ack = await c.subscribe([
      { filter: `${t}/1`, qos: 1 },
      { filter: `${t}/2`, qos: 1 },
      { filter: `${t}/3`, qos: 1 },
    ]);
    expect(ack.reasonCodes).toEqual([1, 1, 0x80]);
  });

  it('a refused subscription is not made', async () => {
    const t = uniqueTopic();
    const c = await connect(b.port());
    const p = await connect(b.port());
    await c.subscribe([
      { filter: `${t}/1`, qos: 0 },
      { filter: `${t}/2`, qos: 0 },
      { filter: `${t}/3`, qos: 0 },
    ]);
    await p.publish(`${t}/3`, 'no', { qos: 1 });
    await p.publish(`${t}/2`, 'yes', { qos: 1 });
    const m = await c.expect(3);
    expect(m.topic).toBe(`${t}/2`);
    await c.expectSilence(200);
  });

  it('re-subscribing an existing filter at the limit replaces it', async () => {
    const t = uniqueTopic();
    const c = await connect(b.port());
    await c.subscribe([
      { filter: `${t}/1`, qos: 0 },
      { filter: `${t}/2`, qos: 0 },
    ]);
    expect((await c.subscribe([{ filter: `${t}/2`, qos: 2 }])).reasonCodes).toEqual([2]);
  });

  it('an unsubscribe frees a slot', async () => {
    const t = uniqueTopic();
    const c = await connect(b.port());
    await c.subscribe([
      { filter: `${t}/1`, qos: 0 },
      { filter: `${t}/2`, qos: 0 },
    ]);
    expect((await c.unsubscribe(`${t}/1`)).reasonCodes).toEqual([0]);
    expect((await c.subscribe([{ filter: `${t}/3`, qos: 1 }])).reasonCodes).toEqual([1]);
  });
});

describe('max_topic_levels', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker({ listeners: { 'tcp.external': { max_topic_levels: 3 } } });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('a filter with more levels than max_topic_levels is refused with 0x8F (v5)', async () => {
    const c = await connect(b.port());
    const ack = await c.subscribe([
      { filter: 'a/b/c', qos: 1 },
      { filter: 'a/b/c/d', qos: 1 },
      { filter: 'a/b/+/#', qos: 1 },
    ]);
    expect(ack.reasonCodes).toEqual([1, 0x8f, 0x8f]);
  });

  it('a filter with more levels than max_topic_levels is refused with 0x80 (v3.1.1)', async () => {
    const c = await connect(b.port(), { protocolVersion: 4 });
    const ack = await c.subscribe([
      { filter: 'a/b/c', qos: 1 },
      { filter: 'a/b/c/d', qos: 1 },
    ]);
    expect(ack.reasonCodes).toEqual([1, 0x80]);
  });

  it('levels are counted without the $share/{group}/ prefix', async () => {
    const c = await connect(b.port());
    const ack = await c.subscribe([
      { filter: '$share/g/a/b/c', qos: 1 },
      { filter: '$share/g/a/b/c/d', qos: 1 },
    ]);
    expect(ack.reasonCodes).toEqual([1, 0x8f]);
  });
});

describe('max_qos_allowed', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker({ listeners: { 'tcp.external': { max_qos_allowed: 1 } } });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('granted QoS is capped by max_qos_allowed (v5)', async () => {
    const c = await connect(b.port());
    const ack = await c.subscribe([
      { filter: 'q/2', qos: 2 },
      { filter: 'q/1', qos: 1 },
      { filter: 'q/0', qos: 0 },
    ]);
    expect(ack.reasonCodes).toEqual([1, 1, 0]);
  });

  it('granted QoS is capped by max_qos_allowed (v3.1.1)', async () => {
    const c = await connect(b.port(), { protocolVersion: 4 });
    expect((await c.subscribe([{ filter: 'q/2', qos: 2 }])).reasonCodes).toEqual([1]);
  });

  it('a message is delivered at the capped granted QoS', async () => {
    const t = uniqueTopic();
    const c = await connect(b.port());
    const p = await connect(b.port());
    await c.subscribe([{ filter: t, qos: 2 }]);
    await p.publish(t, 'm', { qos: 1 });
    const m = await c.expect(3);
    expect(m.qos).toBe(1);
  });
});
