/**
 * Sessions and the offline queue: what a persistent session collects while offline, max_mqueue_len
 * eviction, mqueue_rate_limit pacing, session expiry (v5 CONNECT/DISCONNECT, v3 listener value, the
 * max_session_expiry_interval cap), UNSUBSCRIBE, and clean start discarding inbound QoS 2 state.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Packet, Properties, ProtocolVersion, QoS } from '@rmqtt-ts/kernel';
import { RawClientPool, connectAccepted, poolForTest, publishDone, publishPacket, startBroker, subscribeGranted, type PacketOf, type RawClient, type RawConnectOptions, type TestBroker } from '@rmqtt-ts/testkit';

type PublishPacket = Extract<Packet, { type: 3 }>;

let b: TestBroker;
const pool = new RawClientPool();
let seq = 0;
const fresh = (): string => `sq${++seq}`;

beforeAll(async () => {
  b = await startBroker({
    listeners: {
      'tcp.external': {},
      'tcp.short': { session_expiry_interval: '1s' },
      'tcp.queue': { max_mqueue_len: 3 },
      'tcp.rate': { mqueue_rate_limit: '2,1s' },
      'tcp.capped': { max_session_expiry_interval: '1s' },
    },
  });
});
afterEach(() => {
  pool.destroyAll();
});
afterAll(async () => {
  await b?.stop();
});

/** Connect (v5 unless told) with CONNACK 0 required, tracked by `clients`: a concurrent test's own pool. */
function connect({ listener, ...options }: RawConnectOptions & { listener?: string } = {}, clients: RawClientPool = pool): Promise<{ client: RawClient; connack: PacketOf<2> }> {
  return connectAccepted(clients, b.port(listener), { protocolVersion: 5, ...options });
}

/** A persistent session: v3 clean_session=0, v5 with a Session Expiry. */
function persistent(version: ProtocolVersion, clientId: string, resume: boolean, listener?: string, expiry = 60): RawConnectOptions & { listener?: string } {
  return version === 5
    ? { protocolVersion: 5, clientId, cleanStart: !resume, properties: { sessionExpiryInterval: expiry }, listener }
    : { protocolVersion: version, clientId, cleanStart: false, listener };
}

/**
 * Publish from a v5 client and complete the exchange, so the message has been routed when this resolves.
 * Resolves with the PUBACK/PUBREC reason code (0x10: no subscriber matched), undefined for QoS 0.
 */
async function publishCode(c: RawClient, topic: string, payload: string, qos: QoS, packetId = 1): Promise<number | undefined> {
  return (await publishDone(c, topic, payload, { qos, packetId }))?.reasonCode;
}

/** DISCONNECT (with properties) and wait for the close. */
async function disconnectWith(c: RawClient, properties: Properties): Promise<void> {
  c.send({ type: 14, reasonCode: 0, properties });
  c.socket.end();
  await c.closed;
}

/**
 * Read n PUBLISHes, completing each QoS 1/2 exchange so the window never holds anything back; the
 * broker's PUBRELs (which may come between PUBLISHes) are answered with PUBCOMP.
 */
async function receive(c: RawClient, n: number): Promise<PublishPacket[]> {
  const got: PublishPacket[] = [];
  while (got.length < n) {
    const p = await c.next(3000);
    if (p === null) throw new Error(`connection closed after ${got.length} of ${n} PUBLISHes`);
    if (p.type === 6) {
      c.send({ type: 7, packetId: p.packetId, reasonCode: 0, properties: {} });
      continue;
    }
    if (p.type !== 3) throw new Error(`expected PUBLISH, got packet type ${p.type}`);
    got.push(p);
    if (p.qos === 1) c.send({ type: 4, packetId: p.packetId!, reasonCode: 0, properties: {} });
    if (p.qos === 2) c.send({ type: 5, packetId: p.packetId!, reasonCode: 0, properties: {} });
  }
  return got;
}

/** No PUBLISH (or anything else) for `ms`, apart from the PUBRELs that complete exchanges already read. */
async function silent(c: RawClient, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (let left = ms; left > 0; left = until - Date.now()) {
    let p: Packet | null;
    try {
      p = await c.next(left);
    } catch {
      return true;
    }
    if (p?.type !== 6) throw new Error(`expected silence, got ${p === null ? 'a close' : `packet type ${p.type}`}`);
    c.send({ type: 7, packetId: p.packetId, reasonCode: 0, properties: {} });
  }
  return true;
}

/** Every byte the broker sends from now on. */
function wire(c: RawClient): () => Buffer {
  const chunks: Buffer[] = [];
  c.socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return () => Buffer.concat(chunks);
}

const dropped = (): number => b.broker.metrics.get('messages.dropped');

describe('offline queue', () => {
  for (const version of [4, 5] as const) {
    it(`v${version}: an offline persistent session collects QoS 0, 1 and 2 messages and receives them in order on reconnect`, async () => {
      const t = fresh();
      const clientId = `${t}-sub`;
      const first = await connect(persistent(version, clientId, false));
      await subscribeGranted(first.client, `${t}/#`, 2);
      await first.client.disconnect();

      const { client: pub } = await connect();
      const sent: [string, QoS][] = [
        ['m0', 0],
        ['m1', 1],
        ['m2', 2],
        ['m3', 1],
        ['m4', 0],
      ];
      for (const [i, [payload, qos]] of sent.entries()) expect(await publishCode(pub, `${t}/x`, payload, qos, i + 1)).not.toBe(0x10);

      const again = await connect(persistent(version, clientId, true));
      expect(again.connack.sessionPresent).toBe(true);
      const got = await receive(again.client, 5);
      expect(got.map((p) => [p.payload.toString(), p.qos])).toEqual(sent);
      // a queued message is sent for the first time: not a re-delivery
      expect(got.every((p) => !p.dup)).toBe(true);
      expect(await silent(again.client, 200)).toBe(true);
    });
  }

  it('max_mqueue_len full: a new QoS 0 message is dropped and counted', async () => {
    const t = fresh();
    const clientId = `${t}-sub`;
    const first = await connect(persistent(5, clientId, false, 'tcp.queue'));
    await subscribeGranted(first.client, `${t}/#`, 2);
    await first.client.disconnect();

    const before = dropped();
    const { client: pub } = await connect();
    await publishCode(pub, `${t}/x`, 'a', 1, 1);
    await publishCode(pub, `${t}/x`, 'b', 2, 2);
    await publishCode(pub, `${t}/x`, 'c', 1, 3);
    await publishCode(pub, `${t}/x`, 'd', 0);
    expect(dropped() - before).toBe(1);

    const again = await connect(persistent(5, clientId, true, 'tcp.queue'));
    const got = await receive(again.client, 3);
    expect(got.map((p) => p.payload.toString())).toEqual(['a', 'b', 'c']);
    expect(await silent(again.client, 200)).toBe(true);
  });

  it('max_mqueue_len full: a new QoS 1/2 message evicts the oldest queued message, each eviction counted', async () => {
    const t = fresh();
    const clientId = `${t}-sub`;
    const first = await connect(persistent(5, clientId, false, 'tcp.queue'));
    await subscribeGranted(first.client, `${t}/#`, 2);
    await first.client.disconnect();

    const before = dropped();
    const { client: pub } = await connect();
    await publishCode(pub, `${t}/x`, 'a', 1, 1);
    await publishCode(pub, `${t}/x`, 'b', 0);
    await publishCode(pub, `${t}/x`, 'c', 1, 2);
    expect(dropped() - before).toBe(0);
    await publishCode(pub, `${t}/x`, 'd', 1, 3);
    await publishCode(pub, `${t}/x`, 'e', 2, 4);
    expect(dropped() - before).toBe(2);

    const again = await connect(persistent(5, clientId, true, 'tcp.queue'));
    const got = await receive(again.client, 3);
    expect(got.map((p) => [p.payload.toString(), p.qos])).toEqual([
      ['c', 1],
      ['d', 1],
      ['e', 2],
    ]);
    expect(await silent(again.client, 200)).toBe(true);
  });
});

describe('mqueue_rate_limit', () => {
  it('"2,1s": the offline queue drains at that pace after reconnect', async () => {
    const t = fresh();
    const clientId = `${t}-sub`;
    const first = await connect(persistent(5, clientId, false, 'tcp.rate'));
    await subscribeGranted(first.client, `${t}/#`, 1);
    await first.client.disconnect();
    const { client: pub } = await connect();
    for (let i = 1; i <= 6; i++) await publishCode(pub, `${t}/x`, `m${i}`, 1, i);

    const again = await connect(persistent(5, clientId, true, 'tcp.rate'));
    const t0 = Date.now();
    const at: number[] = [];
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      const p = await again.client.expect(3, 3000);
      at.push(Date.now() - t0);
      order.push(p.payload.toString());
      again.client.send({ type: 4, packetId: p.packetId!, reasonCode: 0, properties: {} });
    }
    expect(order).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
    // a burst of 2 at once, then one every 500 ms
    expect(at[1]).toBeLessThan(300);
    expect(at[2]).toBeGreaterThanOrEqual(350);
    expect(at[5]).toBeGreaterThanOrEqual(1700);
  });

  it('a message that can be written at once (online, empty queue) is not delayed by it', async () => {
    const t = fresh();
    const { client: sub } = await connect({ listener: 'tcp.rate' });
    await subscribeGranted(sub, `${t}/#`, 1);
    const { client: pub } = await connect();
    const t0 = Date.now();
    for (let i = 1; i <= 6; i++) pub.send(publishPacket(`${t}/x`, `m${i}`, { qos: 1, packetId: i }));
    const got = await receive(sub, 6);
    expect(got.map((p) => p.payload.toString())).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
    // paced at "2,1s" the sixth would come after 2 s
    expect(Date.now() - t0).toBeLessThan(500);
  });
});

describe('session expiry', () => {
  it('[MQTT-3.1.2-23] a v5 session with Session Expiry 1 s survives a reconnect within that second, queued messages included', async () => {
    const t = fresh();
    const clientId = `${t}-sub`;
    const first = await connect(persistent(5, clientId, false, undefined, 1));
    await subscribeGranted(first.client, `${t}/#`, 1);
    await first.client.disconnect();
    const { client: pub } = await connect();
    expect(await publishCode(pub, `${t}/x`, 'kept', 1)).toBe(0);
    await sleep(300);

    const again = await connect(persistent(5, clientId, true, undefined, 1));
    expect(again.connack.sessionPresent).toBe(true);
    expect((await again.client.expect(3)).payload.toString()).toBe('kept');
  });

  it('a v5 Session Expiry of 0 ends the session at disconnect', async () => {
    const t = fresh();
    const clientId = `${t}-sub`;
    const first = await connect({ clientId, cleanStart: true });
    await subscribeGranted(first.client, `${t}/#`, 1);
    await first.client.disconnect();
    const { client: pub } = await connect();
    expect(await publishCode(pub, `${t}/x`, 'nobody', 1)).toBe(0x10);

    const again = await connect({ clientId, cleanStart: false, properties: { sessionExpiryInterval: 60 } });
    expect(again.connack.sessionPresent).toBe(false);
    expect(await silent(again.client, 200)).toBe(true);
  });

  it("a v3.1.1 clean_session=0 session is resumed within the listener's session_expiry_interval", async () => {
    const t = fresh();
    const clientId = `${t}-sub`;
    const first = await connect(persistent(4, clientId, false, 'tcp.short'));
    await subscribeGranted(first.client, `${t}/#`, 1);
    await first.client.disconnect();
    const { client: pub } = await connect();
    expect(await publishCode(pub, `${t}/x`, 'kept', 1)).toBe(0);
    await sleep(300);

    const again = await connect(persistent(4, clientId, true, 'tcp.short'));
    expect(again.connack.sessionPresent).toBe(true);
    expect((await again.client.expect(3)).payload.toString()).toBe('kept');
  });

  it('max_session_expiry_interval caps a v5 request and CONNACK carries the value in force', async () => {
    const { connack } = await connect({ listener: 'tcp.capped', clientId: `${fresh()}-c`, properties: { sessionExpiryInterval: 3600 } });
    expect(connack.properties.sessionExpiryInterval).toBe(1);
  });

  it('a v5 request within max_session_expiry_interval is kept: CONNACK has no Session Expiry Interval', async () => {
    const { connack } = await connect({ listener: 'tcp.capped', clientId: `${fresh()}-c`, properties: { sessionExpiryInterval: 1 } });
    expect(connack.properties.sessionExpiryInterval).toBeUndefined();
  });

  it('[MQTT-3.14.2-2] DISCONNECT with Session Expiry > 0 after CONNECT sent 0 gets DISCONNECT 0x82', async () => {
    const { client } = await connect({ clientId: `${fresh()}-c` });
    client.send({ type: 14, reasonCode: 0, properties: { sessionExpiryInterval: 30 } });
    const got = await client.expectClose();
    expect(got).toEqual([expect.objectContaining({ type: 14, reasonCode: 0x82 })]);
  });

  it('a DISCONNECT may lower a non-zero Session Expiry (60 → 0 ends the session now)', async () => {
    const t = fresh();
    const clientId = `${t}-sub`;
    const first = await connect(persistent(5, clientId, false));
    await subscribeGranted(first.client, `${t}/#`, 1);
    await disconnectWith(first.client, { sessionExpiryInterval: 0 });
    const { client: pub } = await connect();
    expect(await publishCode(pub, `${t}/x`, 'nobody', 1)).toBe(0x10);
    const again = await connect(persistent(5, clientId, true));
    expect(again.connack.sessionPresent).toBe(false);
  });
});

// Each of these waits ~2 s for an expiry: they run side by side, each with its own clients.
describe.concurrent('session expiry: after the interval', () => {
  it('a v5 session with Session Expiry 1 s is gone after ~2 s: Session Present 0, queue and subscriptions gone', async ({ onTestFinished }) => {
    const mine = poolForTest(onTestFinished);
    const t = fresh();
    const clientId = `${t}-sub`;
    const first = await connect(persistent(5, clientId, false, undefined, 1), mine);
    await subscribeGranted(first.client, `${t}/#`, 1);
    await first.client.disconnect();
    const { client: pub } = await connect({}, mine);
    expect(await publishCode(pub, `${t}/x`, 'lost', 1, 1)).toBe(0);
    await sleep(2100);

    const again = await connect(persistent(5, clientId, true, undefined, 1), mine);
    expect(again.connack.sessionPresent).toBe(false);
    expect(await again.client.expectSilence(300)).toBe(true);
    expect(await publishCode(pub, `${t}/x`, 'after', 1, 2)).toBe(0x10);
  });

  it("a v3.1.1 clean_session=0 session ends after the listener's session_expiry_interval (1 s)", async ({ onTestFinished }) => {
    const mine = poolForTest(onTestFinished);
    const t = fresh();
    const clientId = `${t}-sub`;
    const first = await connect(persistent(4, clientId, false, 'tcp.short'), mine);
    await subscribeGranted(first.client, `${t}/#`, 1);
    await first.client.disconnect();
    await sleep(2100);
    const { client: pub } = await connect({}, mine);
    expect(await publishCode(pub, `${t}/x`, 'nobody', 1)).toBe(0x10);

    const again = await connect(persistent(4, clientId, true, 'tcp.short'), mine);
    expect(again.connack.sessionPresent).toBe(false);
  });

  it('the capped Session Expiry is the one in force: the session is gone after ~2 s', async ({ onTestFinished }) => {
    const mine = poolForTest(onTestFinished);
    const t = fresh();
    const clientId = `${t}-sub`;
    const first = await connect(persistent(5, clientId, false, 'tcp.capped', 3600), mine);
    await subscribeGranted(first.client, `${t}/#`, 1);
    await first.client.disconnect();
    await sleep(2100);
    const again = await connect(persistent(5, clientId, true, 'tcp.capped', 3600), mine);
    expect(again.connack.sessionPresent).toBe(false);
  });

  it('a DISCONNECT may raise a non-zero Session Expiry (1 → 60 keeps the session past 2 s)', async ({ onTestFinished }) => {
    const mine = poolForTest(onTestFinished);
    const t = fresh();
    const clientId = `${t}-sub`;
    const first = await connect(persistent(5, clientId, false, undefined, 1), mine);
    await subscribeGranted(first.client, `${t}/#`, 1);
    await disconnectWith(first.client, { sessionExpiryInterval: 60 });
    await sleep(2100);
    const { client: pub } = await connect({}, mine);
    expect(await publishCode(pub, `${t}/x`, 'kept', 1)).toBe(0);
    const again = await connect(persistent(5, clientId, true, undefined, 1), mine);
    expect(again.connack.sessionPresent).toBe(true);
    expect((await again.client.expect(3)).payload.toString()).toBe('kept');
  });

  it('a DISCONNECT may lower a non-zero Session Expiry (60 → 1: the session is gone after ~2 s)', async ({ onTestFinished }) => {
    const mine = poolForTest(onTestFinished);
    const t = fresh();
    const clientId = `${t}-sub`;
    const first = await connect(persistent(5, clientId, false), mine);
    await subscribeGranted(first.client, `${t}/#`, 1);
    await disconnectWith(first.client, { sessionExpiryInterval: 1 });
    await sleep(2100);
    const { client: pub } = await connect({}, mine);
    expect(await publishCode(pub, `${t}/x`, 'nobody', 1)).toBe(0x10);
    const again = await connect(persistent(5, clientId, true), mine);
    expect(again.connack.sessionPresent).toBe(false);
  });
});

describe('unsubscribe', () => {
  for (const version of [4, 5] as const) {
    it(`[MQTT-3.10.4-2] v${version}: after UNSUBSCRIBE no new messages for the filter are delivered`, async () => {
      const t = fresh();
      const { client: sub } = await connect({ protocolVersion: version });
      await subscribeGranted(sub, `${t}/#`, 1);
      const { client: pub } = await connect();
      expect(await publishCode(pub, `${t}/x`, 'before', 1, 1)).toBe(0);
      expect((await receive(sub, 1))[0]!.payload.toString()).toBe('before');
      await sub.unsubscribe(`${t}/#`);
      expect(await publishCode(pub, `${t}/x`, 'after', 1, 2)).toBe(0x10);
      expect(await sub.expectSilence(300)).toBe(true);
    });
  }

  it('[MQTT-3.11.3-1] [MQTT-3.11.3-2] v5 UNSUBACK gives 0x00 for a filter with a subscription and 0x11 for one without, in order', async () => {
    const t = fresh();
    const { client } = await connect();
    await subscribeGranted(client, `${t}/a`, 1);
    client.send({ type: 10, packetId: 9, filters: [`${t}/none`, `${t}/a`], properties: {} });
    expect(await client.expect(11)).toMatchObject({ packetId: 9, reasonCodes: [0x11, 0x00] });
  });

  it('v3.1.1 UNSUBACK has no payload, whether or not the filter was subscribed', async () => {
    const t = fresh();
    const { client } = await connect({ protocolVersion: 4 });
    await subscribeGranted(client, `${t}/a`, 1);
    const bytes = wire(client);
    client.send({ type: 10, packetId: 0x0a0b, filters: [`${t}/a`, `${t}/none`], properties: {} });
    await client.expect(11);
    expect([...bytes()]).toEqual([0xb0, 0x02, 0x0a, 0x0b]);
  });
});

describe('clean start and inbound QoS 2 state', () => {
  /** Leave packet id 9 awaiting PUBREL in the publisher's persistent session, then disconnect. */
  async function leaveUnreleased(version: ProtocolVersion, clientId: string, topic: string): Promise<void> {
    const { client } = await connect(persistent(version, clientId, false));
    client.send(publishPacket(topic, 'first', { qos: 2, packetId: 9 }));
    expect(await client.expect(5)).toMatchObject({ packetId: 9, reasonCode: 0 });
    await client.disconnect();
  }

  for (const version of [4, 5] as const) {
    it(`[MQTT-3.1.2-4] v${version}: clean start discards inbound QoS 2 state: an id pending PUBREL before is a new message after`, async () => {
      const t = fresh();
      const { client: sub } = await connect();
      await subscribeGranted(sub, `${t}/#`, 2);
      const clientId = `${t}-pub`;
      await leaveUnreleased(version, clientId, `${t}/x`);
      expect((await receive(sub, 1))[0]!.payload.toString()).toBe('first');

      const clean = version === 5 ? { protocolVersion: 5 as const, clientId, cleanStart: true, properties: { sessionExpiryInterval: 60 } } : { protocolVersion: version, clientId, cleanStart: true };
      const again = await connect(clean);
      expect(again.connack.sessionPresent).toBe(false);
      again.client.send(publishPacket(`${t}/x`, 'second', { qos: 2, packetId: 9 }));
      expect(await again.client.expect(5)).toMatchObject({ packetId: 9, reasonCode: 0 });
      expect((await receive(sub, 1))[0]!.payload.toString()).toBe('second');
    });

    it(`[MQTT-4.3.3-10] v${version}: a resumed session keeps inbound QoS 2 state: the pending id re-sent is not delivered again`, async () => {
      const t = fresh();
      const { client: sub } = await connect();
      await subscribeGranted(sub, `${t}/#`, 2);
      const clientId = `${t}-pub`;
      await leaveUnreleased(version, clientId, `${t}/x`);
      expect((await receive(sub, 1))[0]!.payload.toString()).toBe('first');

      const again = await connect(persistent(version, clientId, true));
      expect(again.connack.sessionPresent).toBe(true);
      again.client.send(publishPacket(`${t}/x`, 'first', { qos: 2, packetId: 9, dup: true }));
      expect(await again.client.expect(5)).toMatchObject({ packetId: 9, reasonCode: 0 });
      again.client.send({ type: 6, packetId: 9, reasonCode: 0, properties: {} });
      expect(await again.client.expect(7)).toMatchObject({ packetId: 9, reasonCode: 0 });
      expect(await silent(sub, 300)).toBe(true);
    });
  }
});
