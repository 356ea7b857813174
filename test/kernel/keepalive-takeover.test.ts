import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import type { Packet, Will } from '@rmqtt-ts/kernel';
import { connectClient, connectTracked, endClient, poolForTest, RawClient, RawClientPool, recorder, startBroker, type RawConnectOptions, type TestBroker } from '@rmqtt-ts/testkit';

// ---- helpers ----

/**
 * Raw clients of a sequential test, destroyed after it whatever happened; a concurrent test (whose
 * neighbours' clients must survive its afterEach) has its own poolForTest(onTestFinished).
 */
const pool = new RawClientPool();
const mqttClients: MqttClient[] = [];

async function watch(url: string, topic: string): Promise<ReturnType<typeof recorder>> {
  const c = await connectClient(url, { protocolVersion: 5 });
  mqttClients.push(c);
  const rec = recorder(c);
  await c.subscribeAsync(topic, { qos: 1 });
  return rec;
}

async function mqttPublisher(url: string): Promise<MqttClient> {
  const c = await connectClient(url, { protocolVersion: 4 });
  mqttClients.push(c);
  return c;
}

afterEach(async () => {
  pool.destroyAll();
  await Promise.all(mqttClients.splice(0).map((c) => endClient(c, true)));
});

function willOf(topic: string, willDelayInterval?: number): Will {
  return { topic, payload: Buffer.from('last words'), qos: 1, retain: false, properties: willDelayInterval === undefined ? {} : { willDelayInterval } };
}

const uid = (prefix: string): string => `${prefix}-${Math.random().toString(16).slice(2, 10)}`;

/** Close of a silent connection: when it came (ms after CONNECT was written) and what was sent before. */
async function silentUntilClose(clients: RawClientPool, port: number, o: RawConnectOptions): Promise<{ elapsed: number; packets: Packet[]; connack: Extract<Packet, { type: 2 }> }> {
  const client = clients.track(await RawClient.open(port, { version: o.protocolVersion ?? 4 }));
  const t0 = Date.now();
  client.send(RawClient.connectPacket(o));
  const connack = await client.expect(2);
  const packets = await client.expectClose(5000);
  return { elapsed: Date.now() - t0, packets, connack };
}

// ---- tests ----

describe('keepalive', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker({
      listeners: {
        'tcp.external': { keepalive_backoff: 0.75 },
        'tcp.capped': { max_keepalive: 1, keepalive_backoff: 0.75 },
        'tcp.handshake': { handshake_timeout: '1s' },
      },
    });
  });
  afterAll(async () => {
    await b?.stop();
  });

  // the timing tests wait on the broker's once-a-second sweep; run them side by side
  describe.concurrent('timeout', () => {
    it('[MQTT-3.1.2-24] a silent v5 client with keepalive 1 gets DISCONNECT 0x8D after about 1.5 s, not before 1.4 s', async ({ expect, onTestFinished }) => {
      const { elapsed, packets, connack } = await silentUntilClose(poolForTest(onTestFinished), b.port('tcp.external'), { protocolVersion: 5, keepalive: 1, clientId: uid('ka5') });
      expect(connack.properties.serverKeepAlive).toBe(1);
      expect(packets).toHaveLength(1);
      expect(packets[0]).toMatchObject({ type: 14, reasonCode: 0x8d });
      // keepalive × 0.75 × 2 = 1.5 s, checked by a sweep once a second
      expect(elapsed).toBeGreaterThanOrEqual(1400);
      expect(elapsed).toBeLessThan(2900);
    });

    it('[MQTT-3.1.2-24] a silent v3.1.1 client with keepalive 1 is closed after about 1.5 s without any packet', async ({ expect, onTestFinished }) => {
      const { elapsed, packets } = await silentUntilClose(poolForTest(onTestFinished), b.port('tcp.external'), { protocolVersion: 4, keepalive: 1, clientId: uid('ka4') });
      expect(packets).toEqual([]);
      expect(elapsed).toBeGreaterThanOrEqual(1400);
      expect(elapsed).toBeLessThan(2900);
    });

    it('v5 keepalive is enforced as the Server Keep Alive announced (60 lowered to max_keepalive 1)', async ({ expect, onTestFinished }) => {
      const { elapsed, packets, connack } = await silentUntilClose(poolForTest(onTestFinished), b.port('tcp.capped'), { protocolVersion: 5, keepalive: 60, clientId: uid('ka-cap') });
      expect(connack.properties.serverKeepAlive).toBe(1);
      expect(packets).toHaveLength(1);
      expect(packets[0]).toMatchObject({ type: 14, reasonCode: 0x8d });
      expect(elapsed).toBeGreaterThanOrEqual(1400);
      expect(elapsed).toBeLessThan(2900);
    });

    it('a client sending PINGREQ within its keepalive stays connected', async ({ expect, onTestFinished }) => {
      const { client } = await connectTracked(poolForTest(onTestFinished), b.port('tcp.external'), { protocolVersion: 5, keepalive: 1, clientId: uid('ka-ping') });
      const until = Date.now() + 3200;
      while (Date.now() < until) {
        await sleep(600);
        client.send({ type: 12 });
        expect(await client.expect(13)).toEqual({ type: 13 });
      }
      expect(client.isClosed).toBe(false);
    });

    it('any inbound packet counts as activity, not only PINGREQ', async ({ expect, onTestFinished }) => {
      const { client } = await connectTracked(poolForTest(onTestFinished), b.port('tcp.external'), { protocolVersion: 4, keepalive: 1, clientId: uid('ka-pub') });
      const until = Date.now() + 3200;
      while (Date.now() < until) {
        await sleep(600);
        expect(await client.publish('ka/activity', 'x', { qos: 1, packetId: 1 })).toMatchObject({ type: 4, packetId: 1 });
      }
      expect(client.isClosed).toBe(false);
    });

    it('keepalive 0 means no timeout', async ({ expect, onTestFinished }) => {
      const { client } = await connectTracked(poolForTest(onTestFinished), b.port('tcp.external'), { protocolVersion: 5, keepalive: 0, clientId: uid('ka-zero') });
      expect(await client.expectSilence(2600)).toBe(true);
    });

    it('a socket that never sends CONNECT is closed after handshake_timeout without any packet, even at level 5', async ({ expect, onTestFinished }) => {
      const client = poolForTest(onTestFinished).track(await RawClient.open(b.port('tcp.handshake'), { version: 5 }));
      const t0 = Date.now();
      expect(await client.expectClose(4000)).toEqual([]);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    });
  });

  for (const version of [3, 4, 5] as const) {
    it(`[MQTT-3.12.4-1] PINGREQ gets PINGRESP (v${version})`, async () => {
      const { client } = await connectTracked(pool, b.port('tcp.external'), { protocolVersion: version, clientId: uid(`ping${version}`) });
      client.send([0xc0, 0x00]);
      expect(await client.expect(13)).toEqual({ type: 13 });
      expect(await client.expectSilence(100)).toBe(true);
    });
  }
});

describe('takeover', () => {
  let b: TestBroker;
  let port: number;
  let url: string;
  beforeAll(async () => {
    b = await startBroker();
    port = b.port();
    url = b.url();
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('[MQTT-3.1.4-3] a v5 connection taken over receives DISCONNECT 0x8E, then is closed', async () => {
    const id = uid('to-v5');
    const first = await connectTracked(pool, port, { protocolVersion: 5, clientId: id });
    const second = await connectTracked(pool, port, { protocolVersion: 5, clientId: id });
    expect(second.connack.reasonCode).toBe(0);
    const got = await first.client.expectClose();
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ type: 14, reasonCode: 0x8e });
    // the new connection is unaffected
    second.client.send({ type: 12 });
    await second.client.expect(13);
  });

  for (const version of [3, 4] as const) {
    it(`[MQTT-3.1.4-2] a v${version} connection taken over is closed without any packet`, async () => {
      const id = uid(`to-v${version}`);
      const first = await connectTracked(pool, port, { protocolVersion: version, clientId: id });
      const second = await connectTracked(pool, port, { protocolVersion: version, clientId: id });
      expect(second.connack.reasonCode).toBe(0);
      expect(await first.client.expectClose()).toEqual([]);
    });
  }

  it('a v5 connection taken over by a v3.1.1 CONNECT still receives DISCONNECT 0x8E', async () => {
    const id = uid('to-mixed');
    const first = await connectTracked(pool, port, { protocolVersion: 5, clientId: id });
    await connectTracked(pool, port, { protocolVersion: 4, clientId: id });
    const got = await first.client.expectClose();
    expect(got.map((p) => [p.type, (p as { reasonCode?: number }).reasonCode])).toEqual([[14, 0x8e]]);
  });

  it('without clean start the new connection gets session present 1 and inherits the subscriptions', async () => {
    const id = uid('to-resume');
    const first = await connectTracked(pool, port, { protocolVersion: 5, clientId: id, cleanStart: false, properties: { sessionExpiryInterval: 60 } });
    expect((await first.client.subscribe({ filter: 'to/resume/+', qos: 1 })).reasonCodes).toEqual([1]);

    const second = await connectTracked(pool, port, { protocolVersion: 5, clientId: id, cleanStart: false, properties: { sessionExpiryInterval: 60 } });
    expect(second.connack).toMatchObject({ reasonCode: 0, sessionPresent: true });
    await first.client.expectClose();

    const pub = await mqttPublisher(url);
    await pub.publishAsync('to/resume/x', 'after takeover', { qos: 1 });
    const msg = await second.client.expect(3);
    expect(msg).toMatchObject({ topic: 'to/resume/x', qos: 1 });
    expect(msg.payload.toString()).toBe('after takeover');
  });

  it('without clean session a v3.1.1 takeover gets session present 1 and inherits the subscriptions', async () => {
    const id = uid('to-resume4');
    const first = await connectTracked(pool, port, { protocolVersion: 4, clientId: id, cleanStart: false });
    await first.client.subscribe({ filter: 'to/resume4/+', qos: 1 });

    const second = await connectTracked(pool, port, { protocolVersion: 4, clientId: id, cleanStart: false });
    expect(second.connack).toMatchObject({ reasonCode: 0, sessionPresent: true });
    await first.client.expectClose();

    const pub = await mqttPublisher(url);
    await pub.publishAsync('to/resume4/x', 'after takeover', { qos: 1 });
    expect(await second.client.expect(3)).toMatchObject({ topic: 'to/resume4/x', qos: 1 });
  });

  it('with clean start the new connection gets session present 0 and the old subscriptions are gone', async () => {
    const id = uid('to-clean');
    const first = await connectTracked(pool, port, { protocolVersion: 5, clientId: id, cleanStart: false, properties: { sessionExpiryInterval: 60 } });
    await first.client.subscribe({ filter: 'to/clean/+', qos: 1 });

    const second = await connectTracked(pool, port, { protocolVersion: 5, clientId: id, cleanStart: true });
    expect(second.connack).toMatchObject({ reasonCode: 0, sessionPresent: false });
    await first.client.expectClose();

    const pub = await mqttPublisher(url);
    await pub.publishAsync('to/clean/x', 'after takeover', { qos: 1 });
    expect(await second.client.expectSilence(300)).toBe(true);
  });

  it('messages published after a takeover are delivered with mqtt.js to the new client only', async () => {
    const id = uid('to-mqttjs');
    const first = await connectClient(url, { protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    mqttClients.push(first);
    const firstRec = recorder(first);
    await first.subscribeAsync('to/js/#', { qos: 1 });
    const closed = new Promise<void>((resolve) => first.once('close', () => resolve()));
    const second = await connectClient(url, { protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    mqttClients.push(second);
    const secondRec = recorder(second);
    await closed;

    const pub = await mqttPublisher(url);
    await pub.publishAsync('to/js/a', 'one', { qos: 1 });
    const m = await secondRec.next();
    expect(m.topic).toBe('to/js/a');
    expect(m.payload.toString()).toBe('one');
    expect(firstRec.messages).toHaveLength(0);
  });

  describe('will of the taken-over connection', () => {
    for (const cleanStart of [false, true]) {
      it(`is published on takeover when its will delay is 0 (new connection clean start ${cleanStart ? 1 : 0})`, async () => {
        const topic = `to/will/${uid('d0')}`;
        const rec = await watch(url, topic);
        const id = uid('to-will');
        await connectTracked(pool, port, { protocolVersion: 5, clientId: id, cleanStart: false, properties: { sessionExpiryInterval: 60 }, will: willOf(topic) });
        await connectTracked(pool, port, { protocolVersion: 5, clientId: id, cleanStart });
        const m = await rec.next(2000);
        expect(m.topic).toBe(topic);
        expect(m.payload.toString()).toBe('last words');
      });
    }

    it('of a v3.1.1 connection is published on takeover', async () => {
      const topic = `to/will/${uid('v4')}`;
      const rec = await watch(url, topic);
      const id = uid('to-will4');
      await connectTracked(pool, port, { protocolVersion: 4, clientId: id, cleanStart: false, will: willOf(topic) });
      await connectTracked(pool, port, { protocolVersion: 4, clientId: id, cleanStart: false });
      const m = await rec.next(2000);
      expect(m.topic).toBe(topic);
      expect(m.payload.toString()).toBe('last words');
    });

    it('[MQTT-3.1.3-9] is not published when its will delay is > 0 and the new connection resumes the session', async () => {
      const topic = `to/will/${uid('d1')}`;
      const rec = await watch(url, topic);
      const id = uid('to-willdelay');
      await connectTracked(pool, port, { protocolVersion: 5, clientId: id, cleanStart: false, properties: { sessionExpiryInterval: 60 }, will: willOf(topic, 1) });
      const second = await connectTracked(pool, port, { protocolVersion: 5, clientId: id, cleanStart: false, properties: { sessionExpiryInterval: 60 } });
      expect(second.connack.sessionPresent).toBe(true);
      // past the 1 s will delay plus the deadline structure's 1 s slack
      await sleep(2300);
      expect(rec.messages).toHaveLength(0);
    });

    it('with will delay > 0 is published at takeover when the new connection starts clean (the session ends)', async () => {
      const topic = `to/will/${uid('d30')}`;
      const rec = await watch(url, topic);
      const id = uid('to-willclean');
      await connectTracked(pool, port, { protocolVersion: 5, clientId: id, cleanStart: false, properties: { sessionExpiryInterval: 60 }, will: willOf(topic, 30) });
      await connectTracked(pool, port, { protocolVersion: 5, clientId: id, cleanStart: true });
      const m = await rec.next(1500);
      expect(m.topic).toBe(topic);
    });

    it('is not published on a normal DISCONNECT followed by a new connection', async () => {
      const topic = `to/will/${uid('norm')}`;
      const rec = await watch(url, topic);
      const id = uid('to-willnorm');
      const first = await connectTracked(pool, port, { protocolVersion: 5, clientId: id, will: willOf(topic) });
      await first.client.disconnect();
      await connectTracked(pool, port, { protocolVersion: 5, clientId: id });
      await sleep(300);
      expect(rec.messages).toHaveLength(0);
    });
  });
});

describe('server DISCONNECT only to v5 clients after CONNACK', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker({ listeners: { 'tcp.external': { allow_anonymous: false } } });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('a v5 client refused at CONNECT gets only the CONNACK, no DISCONNECT', async () => {
    const { client, connack } = await connectTracked(pool, b.port(), { protocolVersion: 5 });
    expect(connack.reasonCode).toBe(0x87);
    expect(await client.expectClose()).toEqual([]);
  });

  it('a malformed v5 CONNECT gets CONNACK 0x81 and no DISCONNECT', async () => {
    const client = pool.track(await RawClient.open(b.port(), { version: 5 }));
    // v5 CONNECT whose reserved flag bit is set [MQTT-3.1.2-3]
    client.send([0x10, 0x0e, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x05, 0x03, 0x00, 0x3c, 0x00, 0x00, 0x01, 0x61]);
    const got = await client.expectClose();
    expect(got.map((p) => p.type)).toEqual([2]);
    expect((got[0] as Extract<Packet, { type: 2 }>).reasonCode).toBe(0x81);
  });
});
