import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import retainer from '@rmqtt-ts/plugin-retainer';
import { RawClient, startBroker, type RawConnectOptions, type TestBroker } from '@rmqtt-ts/testkit';
import type { Packet, Properties, PublishPacket, QoS, SubackPacket, SubscriptionRequest } from '@rmqtt-ts/kernel';

// ---- helpers (raw clients, closed after every test) ----

const open: RawClient[] = [];

afterEach(() => {
  for (const c of open.splice(0)) c.destroy();
});

async function connect(port: number, o: RawConnectOptions = {}): Promise<RawClient> {
  const { client, connack } = await RawClient.connect(port, { protocolVersion: 5, ...o });
  open.push(client);
  expect(connack.reasonCode).toBe(0);
  return client;
}

let nextId = 1;
const pid = (): number => (nextId = (nextId % 60000) + 1);

type Sub = Partial<SubscriptionRequest> & { filter: string };

async function subscribe(c: RawClient, subs: Sub[], properties: Properties = {}): Promise<SubackPacket> {
  const packetId = pid();
  c.send({
    type: 8,
    packetId,
    subscriptions: subs.map((s) => ({ qos: 0 as QoS, noLocal: false, retainAsPublished: false, retainHandling: 0 as const, ...s })),
    properties,
  });
  const ack = await c.expect(9);
  expect(ack.packetId).toBe(packetId);
  return ack;
}

/** Publish and wait for the acknowledgement flow to finish (a sync point: routing happens before the ack). */
async function publish(c: RawClient, topic: string, payload: string, o: { qos?: QoS; retain?: boolean; properties?: Properties } = {}): Promise<void> {
  const qos = o.qos ?? 1;
  const packetId = qos === 0 ? undefined : pid();
  c.send({ type: 3, topic, payload: Buffer.from(payload), qos, retain: o.retain ?? false, dup: false, packetId, properties: o.properties ?? {} });
  if (qos === 1) expect((await c.expect(4)).packetId).toBe(packetId);
  if (qos === 2) {
    await c.expect(5);
    c.send({ type: 6, packetId: packetId!, reasonCode: 0, properties: {} });
    await c.expect(7);
  }
}

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
    expect((await subscribe(s, [{ filter: `${t}/#`, qos: 0 }])).reasonCodes).toEqual([0]);
    expect((await subscribe(s, [{ filter: `${t}/+`, qos: 2 }])).reasonCodes).toEqual([2]);
    await publish(p, `${t}/x`, 'm', { qos: 2 });
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
    await subscribe(s, [{ filter: `${t}/#`, qos: 0 }], { subscriptionIdentifiers: [1] });
    await subscribe(s, [{ filter: `${t}/+`, qos: 2 }], { subscriptionIdentifiers: [2] });
    await publish(p, `${t}/x`, 'm', { qos: 2 });
    const m = await s.expect(3);
    expect(m.qos).toBe(2);
    expect([...(m.properties.subscriptionIdentifiers ?? [])].sort()).toEqual([1, 2]);
    await s.expectSilence(300);
  });

  it('[MQTT-3.3.4-3] only the identifiers of subscriptions that match are sent', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    const p = await connect(b.port());
    await subscribe(s, [{ filter: `${t}/#`, qos: 1 }], { subscriptionIdentifiers: [7] });
    await subscribe(s, [{ filter: `${t}/other`, qos: 1 }], { subscriptionIdentifiers: [8] });
    await publish(p, `${t}/x`, 'm', { qos: 1 });
    const m = await s.expect(3);
    expect(m.properties.subscriptionIdentifiers).toEqual([7]);
  });

  it('[MQTT-3.8.3-3] No Local matches are removed before merging: QoS and identifiers come from the rest', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    await subscribe(s, [{ filter: `${t}/#`, qos: 2, noLocal: true }], { subscriptionIdentifiers: [1] });
    await subscribe(s, [{ filter: `${t}/+`, qos: 0 }], { subscriptionIdentifiers: [2] });
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
    await subscribe(s, [
      { filter: `${t}/#`, qos: 0, retainAsPublished: false },
      { filter: `${t}/+`, qos: 0, retainAsPublished: true },
    ]);
    await publish(p, `${t}/x`, 'r', { qos: 1, retain: true });
    const m = await s.expect(3);
    expect(m.retain).toBe(true);
    await s.expectSilence(300);
  });

  it('RETAIN is cleared when the only Retain As Published match is a No Local one that was removed', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    await subscribe(s, [
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
    await subscribe(s, [{ filter: '#', qos: 0 }]);
    await publish(p, `$SYS/${t}`, 'sys', { qos: 1 });
    await publish(p, `ctl/${t}`, 'ctl', { qos: 1 });
    const m = await s.expect(3);
    expect(m.topic).toBe(`ctl/${t}`);
    await s.expectSilence(200);
  });

  it('[MQTT-4.7.2-1] a leading + does not match a $-topic', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    const p = await connect(b.port());
    await subscribe(s, [{ filter: `+/${t}`, qos: 0 }]);
    await publish(p, `$SYS/${t}`, 'sys', { qos: 1 });
    await publish(p, `ctl/${t}`, 'ctl', { qos: 1 });
    const m = await s.expect(3);
    expect(m.topic).toBe(`ctl/${t}`);
    await s.expectSilence(200);
  });

  it('[MQTT-4.7.2-1] $SYS/# matches $SYS topics', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    const p = await connect(b.port());
    await subscribe(s, [{ filter: '$SYS/#', qos: 0 }]);
    await publish(p, `$SYS/${t}`, 'sys', { qos: 1 });
    const m = await s.expect(3);
    expect(m.topic).toBe(`$SYS/${t}`);
    expect(m.payload.toString()).toBe('sys');
  });

  it('[MQTT-3.8.3-3] a No Local subscription does not get the client\'s own publishes', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    const p = await connect(b.port());
    await subscribe(s, [{ filter: t, qos: 1, noLocal: true }]);
    await publish(s, t, 'own', { qos: 1 });
    await publish(p, t, 'other', { qos: 1 });
    const m = await s.expect(3);
    expect(m.payload.toString()).toBe('other');
    s.send({ type: 4, packetId: m.packetId!, reasonCode: 0, properties: {} });
    await s.expectSilence(200);
  });

  it('without No Local a client gets its own publishes', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    await subscribe(s, [{ filter: t, qos: 0 }]);
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
    await subscribe(s, [{ filter: t, qos: 0, retainAsPublished: false }]);
    await publish(p, t, 'r', { qos: 1, retain: true });
    const m = await s.expect(3);
    expect(m.payload.toString()).toBe('r');
    expect(m.retain).toBe(false);
  });

  it('[MQTT-3.3.1-13] with Retain As Published a live retained message keeps RETAIN=1', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    const p = await connect(b.port());
    await subscribe(s, [{ filter: t, qos: 0, retainAsPublished: true }]);
    await publish(p, t, 'r', { qos: 1, retain: true });
    const m = await s.expect(3);
    expect(m.payload.toString()).toBe('r');
    expect(m.retain).toBe(true);
  });

  it('[MQTT-3.3.1-13] with Retain As Published a non-retained message arrives with RETAIN=0', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    const p = await connect(b.port());
    await subscribe(s, [{ filter: t, qos: 0, retainAsPublished: true }]);
    await publish(p, t, 'n', { qos: 1, retain: false });
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
      expect((await subscribe(c, [{ filter, qos: 1 }])).reasonCodes).toEqual([0x8f]);
      // the connection stays usable
      expect((await subscribe(c, [{ filter: uniqueTopic(), qos: 1 }])).reasonCodes).toEqual([1]);
    });

    it(`[MQTT-3.9.3-2] invalid filter ${JSON.stringify(filter)} gets 0x80 (v3.1.1)`, async () => {
      const c = await connect(b.port(), { protocolVersion: 4 });
      expect((await subscribe(c, [{ filter, qos: 1 }])).reasonCodes).toEqual([0x80]);
    });
  }

  it('[MQTT-3.8.4-6] [MQTT-3.9.3-1] SUBACK has one code per filter, in the order of the SUBSCRIBE', async () => {
    const t = uniqueTopic();
    const c = await connect(b.port());
    const ack = await subscribe(c, [
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
    await subscribe(c, [
      { filter: 'a/#/b', qos: 1 },
      { filter: `${t}/+`, qos: 1 },
    ]);
    await publish(p, `${t}/x`, 'm', { qos: 1 });
    const m = await c.expect(3);
    expect(m.topic).toBe(`${t}/x`);
  });

  it('[MQTT-3.9.3-2] a v3.1.1 SUBACK carries the granted QoS of valid filters beside 0x80', async () => {
    const t = uniqueTopic();
    const c = await connect(b.port(), { protocolVersion: 4 });
    const ack = await subscribe(c, [
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
    const ack = await subscribe(c, [
      { filter: `${t}/1`, qos: 1 },
      { filter: `${t}/2`, qos: 1 },
      { filter: `${t}/3`, qos: 1 },
    ]);
    expect(ack.reasonCodes).toEqual([1, 1, 0x97]);
  });

  it('a subscription over max_subscriptions gets 0x80 (v3.1.1)', async () => {
    const t = uniqueTopic();
    const c = await connect(b.port(), { protocolVersion: 4 });
    const ack = await subscribe(c, [
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
    await subscribe(c, [
      { filter: `${t}/1`, qos: 0 },
      { filter: `${t}/2`, qos: 0 },
      { filter: `${t}/3`, qos: 0 },
    ]);
    await publish(p, `${t}/3`, 'no', { qos: 1 });
    await publish(p, `${t}/2`, 'yes', { qos: 1 });
    const m = await c.expect(3);
    expect(m.topic).toBe(`${t}/2`);
    await c.expectSilence(200);
  });

  it('re-subscribing an existing filter at the limit replaces it', async () => {
    const t = uniqueTopic();
    const c = await connect(b.port());
    await subscribe(c, [
      { filter: `${t}/1`, qos: 0 },
      { filter: `${t}/2`, qos: 0 },
    ]);
    expect((await subscribe(c, [{ filter: `${t}/2`, qos: 2 }])).reasonCodes).toEqual([2]);
  });

  it('an unsubscribe frees a slot', async () => {
    const t = uniqueTopic();
    const c = await connect(b.port());
    await subscribe(c, [
      { filter: `${t}/1`, qos: 0 },
      { filter: `${t}/2`, qos: 0 },
    ]);
    c.send({ type: 10, packetId: 5, filters: [`${t}/1`], properties: {} });
    expect((await c.expect(11)).reasonCodes).toEqual([0]);
    expect((await subscribe(c, [{ filter: `${t}/3`, qos: 1 }])).reasonCodes).toEqual([1]);
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
    const ack = await subscribe(c, [
      { filter: 'a/b/c', qos: 1 },
      { filter: 'a/b/c/d', qos: 1 },
      { filter: 'a/b/+/#', qos: 1 },
    ]);
    expect(ack.reasonCodes).toEqual([1, 0x8f, 0x8f]);
  });

  it('a filter with more levels than max_topic_levels is refused with 0x80 (v3.1.1)', async () => {
    const c = await connect(b.port(), { protocolVersion: 4 });
    const ack = await subscribe(c, [
      { filter: 'a/b/c', qos: 1 },
      { filter: 'a/b/c/d', qos: 1 },
    ]);
    expect(ack.reasonCodes).toEqual([1, 0x80]);
  });

  it('levels are counted without the $share/{group}/ prefix', async () => {
    const c = await connect(b.port());
    const ack = await subscribe(c, [
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
    const ack = await subscribe(c, [
      { filter: 'q/2', qos: 2 },
      { filter: 'q/1', qos: 1 },
      { filter: 'q/0', qos: 0 },
    ]);
    expect(ack.reasonCodes).toEqual([1, 1, 0]);
  });

  it('granted QoS is capped by max_qos_allowed (v3.1.1)', async () => {
    const c = await connect(b.port(), { protocolVersion: 4 });
    expect((await subscribe(c, [{ filter: 'q/2', qos: 2 }])).reasonCodes).toEqual([1]);
  });

  it('a message is delivered at the capped granted QoS', async () => {
    const t = uniqueTopic();
    const c = await connect(b.port());
    const p = await connect(b.port());
    await subscribe(c, [{ filter: t, qos: 2 }]);
    await publish(p, t, 'm', { qos: 1 });
    const m = await c.expect(3);
    expect(m.qos).toBe(1);
  });
});
