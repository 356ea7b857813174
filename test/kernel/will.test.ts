import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import retainer from '@rmqtt-ts/plugin-retainer';
import { RawClient, RawClientPool, connectTracked, denyPublishTo, startBroker, type RawConnectOptions, type TestBroker } from '@rmqtt-ts/testkit';
import type { QoS, Will } from '@rmqtt-ts/kernel';

// ---- helpers (raw clients, closed after every test) ----

const pool = new RawClientPool();

afterEach(() => {
  pool.destroyAll();
});

/** A v5 client unless told, CONNACK 0 required. */
const connect = (port: number, o: RawConnectOptions = {}): Promise<RawClient> => pool.connect(port, { protocolVersion: 5, ...o });

let seq = 0;
const uniqueTopic = (): string => `will${process.pid}-${++seq}`;
const uniqueId = (): string => `will-client-${process.pid}-${++seq}`;

function will(topic: string, o: Partial<Will> = {}): Will {
  return { topic, payload: Buffer.from('gone'), qos: 0, retain: false, properties: {}, ...o };
}

/** A subscriber on `topic` and a client whose will goes there. */
async function pair(port: number, topic: string, w: Partial<Will> = {}, o: RawConnectOptions = {}, subQos: QoS = 0): Promise<{ s: RawClient; c: RawClient }> {
  const s = await connect(port);
  await s.subscribe([{ filter: topic, qos: subQos }]);
  const c = await connect(port, { will: will(topic, w), ...o });
  return { s, c };
}

// ---- when the will is published ----

describe('will publication', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker({ plugins: [retainer] });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('[MQTT-3.1.2-8] the will is published when the connection closes abnormally', async () => {
    const t = uniqueTopic();
    const { s, c } = await pair(b.port(), t);
    c.destroy();
    const m = await s.expect(3);
    expect(m.topic).toBe(t);
    expect(m.payload.toString()).toBe('gone');
    expect(m.qos).toBe(0);
    expect(m.retain).toBe(false);
  });

  it('[MQTT-3.1.2-8] the will of a v3.1.1 client is published when its connection closes abnormally', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0 }]);
    const c = await connect(b.port(), { protocolVersion: 4, will: will(t) });
    c.destroy();
    expect((await s.expect(3)).payload.toString()).toBe('gone');
  });

  it('[MQTT-3.14.4-3] the will is not published after a normal DISCONNECT', async () => {
    const t = uniqueTopic();
    const { s, c } = await pair(b.port(), t);
    await c.disconnect(0);
    await s.expectSilence(500);
  });

  it('[MQTT-3.14.4-3] the will of a v3.1.1 client is not published after DISCONNECT', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0 }]);
    const c = await connect(b.port(), { protocolVersion: 4, will: will(t) });
    await c.disconnect();
    await s.expectSilence(500);
  });

  it('the will is published after a v5 DISCONNECT with reason 0x04', async () => {
    const t = uniqueTopic();
    const { s, c } = await pair(b.port(), t);
    await c.disconnect(0x04);
    const m = await s.expect(3);
    expect(m.topic).toBe(t);
    expect(m.payload.toString()).toBe('gone');
  });

  it('[MQTT-3.1.2-8] the will is published when the server closes the connection for a protocol error', async () => {
    const t = uniqueTopic();
    const { s, c } = await pair(b.port(), t);
    c.send(RawClient.connectPacket({ protocolVersion: 5, clientId: 'again' }));
    const before = await c.expectClose();
    expect(before).toMatchObject([{ type: 14, reasonCode: 0x82 }]);
    expect((await s.expect(3)).topic).toBe(t);
  });

  it('the will of a taken-over connection is published', async () => {
    const t = uniqueTopic();
    const id = uniqueId();
    const { s, c } = await pair(b.port(), t, {}, { clientId: id });
    await connect(b.port(), { clientId: id });
    expect(await c.expectClose()).toMatchObject([{ type: 14, reasonCode: 0x8e }]);
    expect((await s.expect(3)).payload.toString()).toBe('gone');
  });

  it('[MQTT-3.1.2-10] the will is published only once', async () => {
    const t = uniqueTopic();
    const { s, c } = await pair(b.port(), t);
    c.destroy();
    await s.expect(3);
    await s.expectSilence(400);
  });
});

// ---- Will Delay Interval ----

describe('will delay', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker();
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('[MQTT-3.1.3-9] a will with Will Delay 1 s is published about 1 s after the abnormal close', async () => {
    const t = uniqueTopic();
    const { s, c } = await pair(b.port(), t, { properties: { willDelayInterval: 1 } }, { properties: { sessionExpiryInterval: 10 } });
    const closedAt = Date.now();
    c.destroy();
    await s.expectSilence(700);
    const m = await s.expect(3, 2000);
    const after = Date.now() - closedAt;
    expect(m.payload.toString()).toBe('gone');
    expect(after).toBeGreaterThanOrEqual(950);
    expect(after).toBeLessThan(2500);
  });

  it('[MQTT-3.1.3-9] a delayed will is not published when the client reconnects (clean start 0) within the delay', async () => {
    const t = uniqueTopic();
    const id = uniqueId();
    const { s, c } = await pair(b.port(), t, { properties: { willDelayInterval: 1 } }, { clientId: id, properties: { sessionExpiryInterval: 10 } });
    c.destroy();
    await c.closed;
    const { connack } = await connectTracked(pool, b.port(), { protocolVersion: 5, clientId: id, cleanStart: false, properties: { sessionExpiryInterval: 10 } });
    expect(connack.reasonCode).toBe(0);
    expect(connack.sessionPresent).toBe(true);
    await s.expectSilence(1800);
  });

  it('[MQTT-3.1.3-9] a delayed will is published at once when a clean-start reconnect ends the session', async () => {
    const t = uniqueTopic();
    const id = uniqueId();
    const { s, c } = await pair(b.port(), t, { properties: { willDelayInterval: 5 } }, { clientId: id, properties: { sessionExpiryInterval: 10 } });
    c.destroy();
    await c.closed;
    const started = Date.now();
    const { connack } = await connectTracked(pool, b.port(), { protocolVersion: 5, clientId: id, cleanStart: true });
    expect(connack.sessionPresent).toBe(false);
    const m = await s.expect(3, 1500);
    expect(m.payload.toString()).toBe('gone');
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('[MQTT-3.1.3-9] a will delay longer than the session expiry publishes the will when the session ends', async () => {
    const t = uniqueTopic();
    const { s, c } = await pair(b.port(), t, { properties: { willDelayInterval: 5 } }, { properties: { sessionExpiryInterval: 1 } });
    const closedAt = Date.now();
    c.destroy();
    await s.expectSilence(700);
    const m = await s.expect(3, 2500);
    const after = Date.now() - closedAt;
    expect(m.payload.toString()).toBe('gone');
    expect(after).toBeGreaterThanOrEqual(950);
    expect(after).toBeLessThan(3000);
  });

  it('[MQTT-3.1.3-9] a delayed will of a session that ends at disconnect is published at once', async () => {
    const t = uniqueTopic();
    const { s, c } = await pair(b.port(), t, { properties: { willDelayInterval: 5 } });
    const closedAt = Date.now();
    c.destroy();
    await s.expect(3, 1500);
    expect(Date.now() - closedAt).toBeLessThan(1000);
  });

  it('the Message Expiry Interval of a delayed will counts from its publication', async () => {
    const t = uniqueTopic();
    const { s, c } = await pair(
      b.port(),
      t,
      { properties: { willDelayInterval: 1, messageExpiryInterval: 2 } },
      { properties: { sessionExpiryInterval: 10 } },
    );
    c.destroy();
    const m = await s.expect(3, 2500);
    expect(m.properties.messageExpiryInterval).toBe(2);
  });

  it('a taken-over connection with a Will Delay does not publish its will when the session is resumed', async () => {
    const t = uniqueTopic();
    const id = uniqueId();
    const { s, c } = await pair(b.port(), t, { properties: { willDelayInterval: 1 } }, { clientId: id, properties: { sessionExpiryInterval: 10 } });
    await connect(b.port(), { clientId: id, cleanStart: false, properties: { sessionExpiryInterval: 10 } });
    await c.expectClose();
    await s.expectSilence(1800);
  });
});

// ---- what the will carries ----

describe('will message contents', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker({ plugins: [retainer] });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('[MQTT-3.1.2-9] the will is published at its Will QoS (capped by the subscription)', async () => {
    const t = uniqueTopic();
    const { s, c } = await pair(b.port(), t, { qos: 1 }, {}, 2);
    c.destroy();
    const m = await s.expect(3);
    expect(m.qos).toBe(1);
    expect(m.packetId).toBeGreaterThan(0);
  });

  it('[MQTT-3.1.2-9] a QoS 2 will reaches a QoS 1 subscription at QoS 1', async () => {
    const t = uniqueTopic();
    const { s, c } = await pair(b.port(), t, { qos: 2 }, {}, 1);
    c.destroy();
    expect((await s.expect(3)).qos).toBe(1);
  });

  it('a will with Will Retain is stored as the retained message of its topic', async () => {
    const t = uniqueTopic();
    const c = await connect(b.port(), { will: will(t, { retain: true, payload: Buffer.from('last words') }) });
    // the will itself reaches a current subscriber; wait for it so the store has it
    const watcher = await connect(b.port());
    await watcher.subscribe([{ filter: t, qos: 0 }]);
    c.destroy();
    await watcher.expect(3);
    const later = await connect(b.port());
    await later.subscribe([{ filter: t, qos: 0 }]);
    const m = await later.expect(3);
    expect(m.payload.toString()).toBe('last words');
    expect(m.retain).toBe(true);
  });

  it('[MQTT-3.3.1-13] a retained will keeps RETAIN=1 for a Retain As Published subscription', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0, retainAsPublished: true }]);
    const c = await connect(b.port(), { will: will(t, { retain: true }) });
    c.destroy();
    expect((await s.expect(3)).retain).toBe(true);
  });

  it('[MQTT-3.3.1-12] a retained will arrives with RETAIN=0 without Retain As Published', async () => {
    const t = uniqueTopic();
    const { s, c } = await pair(b.port(), t, { retain: true });
    c.destroy();
    expect((await s.expect(3)).retain).toBe(false);
  });

  it('a non-retained will is not stored', async () => {
    const t = uniqueTopic();
    const { s, c } = await pair(b.port(), t);
    c.destroy();
    await s.expect(3);
    const later = await connect(b.port());
    await later.subscribe([{ filter: t, qos: 0 }]);
    await later.expectSilence(300);
  });

  it('[MQTT-3.1.3-10] will properties arrive with the message', async () => {
    const t = uniqueTopic();
    const { s, c } = await pair(b.port(), t, {
      payload: Buffer.from('{"bye":true}'),
      properties: {
        contentType: 'application/json',
        payloadFormatIndicator: 1,
        responseTopic: `${t}/reply`,
        correlationData: Buffer.from([1, 2, 3]),
        userProperties: [
          ['k', 'v1'],
          ['k', 'v2'],
          ['a', 'b'],
        ],
      },
    });
    c.destroy();
    const m = await s.expect(3);
    expect(m.payload.toString()).toBe('{"bye":true}');
    expect(m.properties.contentType).toBe('application/json');
    expect(m.properties.payloadFormatIndicator).toBe(1);
    expect(m.properties.responseTopic).toBe(`${t}/reply`);
    expect(m.properties.correlationData).toEqual(Buffer.from([1, 2, 3]));
    expect(m.properties.userProperties).toEqual([
      ['k', 'v1'],
      ['k', 'v2'],
      ['a', 'b'],
    ]);
    expect(m.properties.willDelayInterval).toBeUndefined();
  });

  it('[MQTT-3.3.2-6] a will with a Message Expiry Interval is sent with its remaining lifetime', async () => {
    const t = uniqueTopic();
    const { s, c } = await pair(b.port(), t, { properties: { messageExpiryInterval: 60 } });
    c.destroy();
    const left = (await s.expect(3)).properties.messageExpiryInterval!;
    expect(left).toBeGreaterThanOrEqual(59);
    expect(left).toBeLessThanOrEqual(60);
  });
});

// ---- ACL ----

describe('will and the publish ACL', () => {
  let b: TestBroker;
  beforeAll(async () => {
    // denies publishing to `denied/...`, wills included
    b = await startBroker({ plugins: [denyPublishTo('denied/')] });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('a will whose topic the client may not publish to is not published', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    await s.subscribe([{ filter: `denied/${t}`, qos: 0 }, { filter: `ok/${t}`, qos: 0 }]);
    const denied = await connect(b.port(), { will: will(`denied/${t}`) });
    const allowed = await connect(b.port(), { will: will(`ok/${t}`) });
    denied.destroy();
    await denied.closed;
    // give the broker time to handle the first close before the second
    await new Promise((r) => setTimeout(r, 100));
    allowed.destroy();
    // the first will to arrive must be the allowed one
    const m = await s.expect(3);
    expect(m.topic).toBe(`ok/${t}`);
    await s.expectSilence(300);
  });
});
