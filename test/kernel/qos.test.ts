/**
 * QoS 0/1/2 both ways on the wire: acknowledgements, packet identifiers, QoS 2 duplicate detection,
 * redelivery on session resume and (MQTT 3.x only) on message_retry_interval.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Packet, ProtocolVersion } from '@rmqtt-ts/kernel';
import { RawClientPool, connectAccepted, poolForTest, publishDone, publishPacket, startBroker, subscribeGranted, type PacketOf, type RawClient, type RawConnectOptions, type TestBroker } from '@rmqtt-ts/testkit';

type PublishPacket = Extract<Packet, { type: 3 }>;

let b: TestBroker;
const pool = new RawClientPool();
let seq = 0;
/** A topic prefix of its own for each test, so sessions left by one test never see another's messages. */
const fresh = (): string => `qos${++seq}`;

beforeAll(async () => {
  b = await startBroker({
    listeners: {
      'tcp.external': {},
      // a short retry interval, to see (or not see) re-sends within one connection
      'tcp.retry': { message_retry_interval: '1s' },
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

/** Every byte the broker sends from now on. */
function wire(c: RawClient): () => Buffer {
  const chunks: Buffer[] = [];
  c.socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return () => Buffer.concat(chunks);
}

describe('inbound QoS', () => {
  it('[MQTT-4.3.2-4] a v3.1.1 QoS 1 PUBLISH is answered with PUBACK carrying its packet id and nothing else', async () => {
    const { client } = await connect({ protocolVersion: 4 });
    const bytes = wire(client);
    client.send(publishPacket(`${fresh()}/a`, 'x', { qos: 1, packetId: 0x1234 }));
    await client.expect(4);
    expect([...bytes()]).toEqual([0x40, 0x02, 0x12, 0x34]);
  });

  it('[MQTT-4.3.3-8] [MQTT-4.3.3-11] a QoS 2 PUBLISH gets PUBREC, its PUBREL gets PUBCOMP, with the same packet id', async () => {
    const t = fresh();
    const { client: sub } = await connect();
    await subscribeGranted(sub, `${t}/#`, 2);
    const { client } = await connect();
    client.send(publishPacket(`${t}/a`, 'x', { qos: 2, packetId: 300 }));
    const rec = await client.expect(5);
    expect(rec).toMatchObject({ packetId: 300, reasonCode: 0 });
    client.send({ type: 6, packetId: 300, reasonCode: 0, properties: {} });
    expect(await client.expect(7)).toMatchObject({ packetId: 300, reasonCode: 0 });
    const got = await sub.expect(3);
    expect(got.topic).toBe(`${t}/a`);
    expect(got.qos).toBe(2);
  });

  it('v3.1.1 PUBREC and PUBCOMP are two-byte acks without a reason code', async () => {
    const { client } = await connect({ protocolVersion: 4 });
    const bytes = wire(client);
    client.send(publishPacket(`${fresh()}/a`, 'x', { qos: 2, packetId: 0x0102 }));
    await client.expect(5);
    client.send({ type: 6, packetId: 0x0102, reasonCode: 0, properties: {} });
    await client.expect(7);
    expect([...bytes()]).toEqual([0x50, 0x02, 0x01, 0x02, 0x70, 0x02, 0x01, 0x02]);
  });

  for (const [qos, ack, name] of [
    [1, 4, 'PUBACK'],
    [2, 5, 'PUBREC'],
  ] as const) {
    it(`v5 ${name} says 0x10 (No matching subscribers) when nobody subscribed`, async () => {
      const { client } = await connect();
      client.send(publishPacket(`${fresh()}/nobody`, 'x', { qos, packetId: 5 }));
      expect(await client.expect(ack)).toMatchObject({ packetId: 5, reasonCode: 0x10 });
    });

    it(`v5 ${name} says 0x00 when a subscriber matched`, async () => {
      const t = fresh();
      const { client: sub } = await connect();
      await subscribeGranted(sub, `${t}/+`, 1);
      const { client } = await connect();
      client.send(publishPacket(`${t}/a`, 'x', { qos, packetId: 5 }));
      expect(await client.expect(ack)).toMatchObject({ packetId: 5, reasonCode: 0x00 });
    });
  }

  for (const granted of [0, 1, 2] as const) {
    it(`[MQTT-3.8.4-8] a subscription granted QoS ${granted} receives min(published, granted) for QoS 0, 1 and 2`, async () => {
      const t = fresh();
      const { client: sub } = await connect();
      await subscribeGranted(sub, `${t}/m`, granted);
      const { client: pub } = await connect();
      for (const qos of [0, 1, 2] as const) await publishDone(pub, `${t}/m`, `q${qos}`, { qos, packetId: 10 + qos });
      const got: PublishPacket[] = [];
      for (let i = 0; i < 3; i++) got.push(await sub.expect(3));
      expect(got.map((p) => [p.payload.toString(), p.qos])).toEqual([
        ['q0', 0],
        ['q1', Math.min(1, granted)],
        ['q2', Math.min(2, granted)],
      ]);
      // [MQTT-2.2.1-2] no packet id on QoS 0
      for (const p of got) if (p.qos === 0) expect(p.packetId).toBeUndefined();
    });
  }
});

describe('outbound QoS', () => {
  it('[MQTT-2.2.1-4] outbound QoS 1/2 PUBLISHes carry non-zero packet ids, unique among those unacknowledged, DUP=0', async () => {
    const t = fresh();
    const { client: sub } = await connect();
    await subscribeGranted(sub, `${t}/#`, 2);
    const { client: pub } = await connect();
    for (let i = 0; i < 10; i++) await publishDone(pub, `${t}/x`, `m${i}`, { qos: i % 2 === 0 ? 1 : 2, packetId: i + 1 });
    const got: PublishPacket[] = [];
    for (let i = 0; i < 10; i++) got.push(await sub.expect(3));
    expect(got.map((p) => p.payload.toString())).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
    expect(got.map((p) => p.qos)).toEqual(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? 1 : 2)));
    const ids = got.map((p) => p.packetId);
    for (const id of ids) {
      expect(id).toBeGreaterThan(0);
      expect(id).toBeLessThanOrEqual(0xffff);
    }
    expect(new Set(ids).size).toBe(10);
    // [MQTT-4.3.2-2] [MQTT-4.3.3-2] a first send has DUP=0
    expect(got.every((p) => !p.dup)).toBe(true);
  });

  it('[MQTT-4.3.2-3] an outbound QoS 1 PUBLISH completes with the PUBACK (an ack for it again changes nothing)', async () => {
    const t = fresh();
    const { client: sub } = await connect();
    await subscribeGranted(sub, `${t}/#`, 1);
    const { client: pub } = await connect();
    await publishDone(pub, `${t}/x`, 'one', { qos: 1, packetId: 1 });
    const p = await sub.expect(3);
    expect(p.qos).toBe(1);
    sub.send({ type: 4, packetId: p.packetId!, reasonCode: 0, properties: {} });
    sub.send({ type: 4, packetId: p.packetId!, reasonCode: 0, properties: {} });
    expect(await sub.expectSilence(300)).toBe(true);
  });

  it('[MQTT-4.3.3-4] outbound QoS 2: PUBLISH, client PUBREC, broker PUBREL, client PUBCOMP ends the exchange', async () => {
    const t = fresh();
    const { client: sub } = await connect();
    await subscribeGranted(sub, `${t}/#`, 2);
    const { client: pub } = await connect();
    await publishDone(pub, `${t}/x`, 'two', { qos: 2, packetId: 1 });
    const p = await sub.expect(3);
    expect(p).toMatchObject({ qos: 2, dup: false, topic: `${t}/x` });
    const id = p.packetId!;
    sub.send({ type: 5, packetId: id, reasonCode: 0, properties: {} });
    expect(await sub.expect(6)).toMatchObject({ packetId: id, reasonCode: 0 });
    sub.send({ type: 7, packetId: id, reasonCode: 0, properties: {} });
    expect(await sub.expectSilence(200)).toBe(true);
    // the exchange is over: the id is unknown to the broker now
    sub.send({ type: 5, packetId: id, reasonCode: 0, properties: {} });
    expect(await sub.expect(6)).toMatchObject({ packetId: id, reasonCode: 0x92 });
  });

  it('a v5 PUBREC with an unknown packet id is answered with PUBREL 0x92 (Packet Identifier not found)', async () => {
    const { client } = await connect();
    client.send({ type: 5, packetId: 4242, reasonCode: 0, properties: {} });
    expect(await client.expect(6)).toMatchObject({ packetId: 4242, reasonCode: 0x92 });
  });
});

describe('inbound QoS 2 duplicates', () => {
  for (const version of [4, 5] as const) {
    it(`[MQTT-4.3.3-10] v${version}: a QoS 2 PUBLISH re-sent (DUP=1) before PUBREL gets PUBREC 0x00 and is not delivered twice`, async () => {
      const t = fresh();
      const { client: sub } = await connect({ protocolVersion: version });
      await subscribeGranted(sub, `${t}/#`, 2);
      const { client: pub } = await connect({ protocolVersion: version });
      pub.send(publishPacket(`${t}/d`, 'once', { qos: 2, packetId: 77 }));
      expect(await pub.expect(5)).toMatchObject({ packetId: 77, reasonCode: 0 });
      pub.send(publishPacket(`${t}/d`, 'once', { qos: 2, packetId: 77, dup: true }));
      expect(await pub.expect(5)).toMatchObject({ packetId: 77, reasonCode: 0 });
      pub.send({ type: 6, packetId: 77, reasonCode: 0, properties: {} });
      expect(await pub.expect(7)).toMatchObject({ packetId: 77, reasonCode: 0 });
      const p = await sub.expect(3);
      expect(p.payload.toString()).toBe('once');
      expect(await sub.expectSilence(300)).toBe(true);
    });
  }

  it('[MQTT-4.3.3-12] after PUBREL a PUBLISH with the same packet id is a new message', async () => {
    const t = fresh();
    const { client: sub } = await connect();
    await subscribeGranted(sub, `${t}/#`, 2);
    const { client: pub } = await connect();
    await publishDone(pub, `${t}/d`, 'first', { qos: 2, packetId: 9 });
    await publishDone(pub, `${t}/d`, 'second', { qos: 2, packetId: 9 });
    expect((await sub.expect(3)).payload.toString()).toBe('first');
    expect((await sub.expect(3)).payload.toString()).toBe('second');
  });

  it('[MQTT-4.3.3-11] a v5 PUBREL for an unknown packet id is answered with PUBCOMP 0x92', async () => {
    const { client } = await connect();
    client.send({ type: 6, packetId: 31, reasonCode: 0, properties: {} });
    expect(await client.expect(7)).toMatchObject({ packetId: 31, reasonCode: 0x92 });
  });

  it('[MQTT-4.3.3-11] a v3.1.1 PUBREL for an unknown packet id still gets a (code-less) PUBCOMP', async () => {
    const { client } = await connect({ protocolVersion: 4 });
    const bytes = wire(client);
    client.send({ type: 6, packetId: 31, reasonCode: 0, properties: {} });
    await client.expect(7);
    expect([...bytes()]).toEqual([0x70, 0x02, 0x00, 0x1f]);
  });
});

/** A persistent session: v3 clean_session=0, v5 with a Session Expiry. */
function persistent(version: ProtocolVersion, clientId: string, resume: boolean): RawConnectOptions {
  return version === 5
    ? { protocolVersion: 5, clientId, cleanStart: !resume, properties: { sessionExpiryInterval: 60 } }
    : { protocolVersion: version, clientId, cleanStart: false };
}

describe('redelivery on reconnect', () => {
  for (const version of [4, 5] as const) {
    it(`[MQTT-4.4.0-1] v${version}: unacknowledged QoS 1 and 2 PUBLISHes are re-sent on resume with DUP=1, the same ids, in order`, async () => {
      const t = fresh();
      const clientId = `${t}-sub`;
      const first = await connect(persistent(version, clientId, false));
      await subscribeGranted(first.client, `${t}/#`, 2);
      const { client: pub } = await connect();
      await publishDone(pub, `${t}/r`, 'a', { qos: 1, packetId: 1 });
      await publishDone(pub, `${t}/r`, 'b', { qos: 2, packetId: 2 });
      await publishDone(pub, `${t}/r`, 'c', { qos: 1, packetId: 3 });
      const sent: PublishPacket[] = [];
      for (let i = 0; i < 3; i++) sent.push(await first.client.expect(3));
      await first.client.disconnect();

      const again = await connect(persistent(version, clientId, true));
      expect(again.connack.sessionPresent).toBe(true);
      const resent: PublishPacket[] = [];
      for (let i = 0; i < 3; i++) resent.push(await again.client.expect(3));
      expect(resent.map((p) => [p.payload.toString(), p.qos, p.packetId, p.dup])).toEqual(sent.map((p) => [p.payload.toString(), p.qos, p.packetId, true]));
      expect(await again.client.expectSilence(200)).toBe(true);
    });

    it(`[MQTT-4.3.3-6] v${version}: a PUBREL awaiting PUBCOMP is re-sent on resume as PUBREL, not as PUBLISH`, async () => {
      const t = fresh();
      const clientId = `${t}-sub`;
      const first = await connect(persistent(version, clientId, false));
      await subscribeGranted(first.client, `${t}/#`, 2);
      const { client: pub } = await connect();
      await publishDone(pub, `${t}/r`, 'x', { qos: 2, packetId: 1 });
      const p = await first.client.expect(3);
      first.client.send({ type: 5, packetId: p.packetId!, reasonCode: 0, properties: {} });
      expect((await first.client.expect(6)).packetId).toBe(p.packetId);
      await first.client.disconnect();

      const again = await connect(persistent(version, clientId, true));
      expect(again.connack.sessionPresent).toBe(true);
      expect(await again.client.expect(6)).toMatchObject({ packetId: p.packetId, reasonCode: 0 });
      again.client.send({ type: 7, packetId: p.packetId!, reasonCode: 0, properties: {} });
      expect(await again.client.expectSilence(300)).toBe(true);
    });
  }

  it('[MQTT-4.4.0-1] on resume the unacknowledged messages are re-sent first (DUP=1), then the queued ones in order (DUP=0)', async () => {
    const t = fresh();
    const clientId = `${t}-sub`;
    const window2 = { receiveMaximum: 2, sessionExpiryInterval: 60 };
    const first = await connect({ clientId, cleanStart: true, properties: window2 });
    await subscribeGranted(first.client, `${t}/#`, 1);
    const { client: pub } = await connect();
    for (let i = 1; i <= 3; i++) await publishDone(pub, `${t}/r`, `m${i}`, { qos: 1, packetId: i });
    const m1 = await first.client.expect(3);
    const m2 = await first.client.expect(3);
    // m3 waits behind the full window
    expect(await first.client.expectSilence(100)).toBe(true);
    await first.client.disconnect();
    await publishDone(pub, `${t}/r`, 'm4', { qos: 1, packetId: 4 });

    const again = await connect({ clientId, cleanStart: false, properties: window2 });
    expect(again.connack.sessionPresent).toBe(true);
    const r1 = await again.client.expect(3);
    const r2 = await again.client.expect(3);
    expect([r1, r2].map((p) => [p.payload.toString(), p.packetId, p.dup])).toEqual([
      ['m1', m1.packetId, true],
      ['m2', m2.packetId, true],
    ]);
    expect(await again.client.expectSilence(200)).toBe(true);
    again.client.send({ type: 4, packetId: r1.packetId!, reasonCode: 0, properties: {} });
    const r3 = await again.client.expect(3);
    again.client.send({ type: 4, packetId: r2.packetId!, reasonCode: 0, properties: {} });
    const r4 = await again.client.expect(3);
    expect([r3, r4].map((p) => [p.payload.toString(), p.dup])).toEqual([
      ['m3', false],
      ['m4', false],
    ]);
  });

  it('[MQTT-3.3.4-9] [MQTT-4.9.0-2] on resume with a smaller Receive Maximum no more unacknowledged PUBLISHes are re-sent at once than it allows', async () => {
    const t = fresh();
    const clientId = `${t}-sub`;
    const first = await connect({ clientId, cleanStart: true, properties: { receiveMaximum: 3, sessionExpiryInterval: 60 } });
    await subscribeGranted(first.client, `${t}/#`, 1);
    const { client: pub } = await connect();
    for (let i = 1; i <= 3; i++) await publishDone(pub, `${t}/r`, `m${i}`, { qos: 1, packetId: i });
    const sent: PublishPacket[] = [];
    for (let i = 0; i < 3; i++) sent.push(await first.client.expect(3));
    await first.client.disconnect();

    const again = await connect({ clientId, cleanStart: false, properties: { receiveMaximum: 1, sessionExpiryInterval: 60 } });
    expect(again.connack.sessionPresent).toBe(true);
    const got: PublishPacket[] = [await again.client.expect(3)];
    while (got.length < 3) {
      expect(await again.client.expectSilence(200)).toBe(true);
      again.client.send({ type: 4, packetId: got.at(-1)!.packetId!, reasonCode: 0, properties: {} });
      got.push(await again.client.expect(3));
    }
    // still re-deliveries of the same messages: same ids, DUP=1 [MQTT-4.4.0-1]
    expect(got.map((p) => [p.payload.toString(), p.packetId, p.dup])).toEqual(sent.map((p) => [p.payload.toString(), p.packetId, true]));
  });

  it('acknowledged messages are not re-sent on resume', async () => {
    const t = fresh();
    const clientId = `${t}-sub`;
    const first = await connect(persistent(5, clientId, false));
    await subscribeGranted(first.client, `${t}/#`, 1);
    const { client: pub } = await connect();
    await publishDone(pub, `${t}/r`, 'acked', { qos: 1, packetId: 1 });
    await publishDone(pub, `${t}/r`, 'unacked', { qos: 1, packetId: 2 });
    const a = await first.client.expect(3);
    const u = await first.client.expect(3);
    first.client.send({ type: 4, packetId: a.packetId!, reasonCode: 0, properties: {} });
    await first.client.disconnect();

    const again = await connect(persistent(5, clientId, true));
    const p = await again.client.expect(3);
    expect(p).toMatchObject({ packetId: u.packetId, dup: true });
    expect(p.payload.toString()).toBe('unacked');
    expect(await again.client.expectSilence(300)).toBe(true);
  });
});

// Each of these watches the retry timer for seconds: they run side by side, each with its own clients.
describe.concurrent('re-sending within a connection', () => {
  it('[MQTT-4.4.0-1] MQTT 5: unacknowledged PUBLISH and PUBREL are never re-sent on a timer', async ({ onTestFinished }) => {
    const mine = poolForTest(onTestFinished);
    const t = fresh();
    const { client: sub } = await connect({ listener: 'tcp.retry' }, mine);
    await subscribeGranted(sub, `${t}/#`, 2);
    const { client: pub } = await connect({}, mine);
    await publishDone(pub, `${t}/x`, 'q1', { qos: 1, packetId: 1 });
    await publishDone(pub, `${t}/x`, 'q2', { qos: 2, packetId: 2 });
    const p1 = await sub.expect(3);
    const p2 = await sub.expect(3);
    expect([p1.qos, p2.qos]).toEqual([1, 2]);
    sub.send({ type: 5, packetId: p2.packetId!, reasonCode: 0, properties: {} });
    await sub.expect(6);
    // message_retry_interval is 1 s on this listener and the sweep runs every second
    expect(await sub.expectSilence(2500)).toBe(true);
  });

  it('MQTT 3.1.1: an unacknowledged QoS 1 PUBLISH is re-sent after message_retry_interval with DUP=1 and the same id', async ({ onTestFinished }) => {
    const mine = poolForTest(onTestFinished);
    const t = fresh();
    const { client: sub } = await connect({ protocolVersion: 4, listener: 'tcp.retry' }, mine);
    await subscribeGranted(sub, `${t}/#`, 1);
    const { client: pub } = await connect({}, mine);
    await publishDone(pub, `${t}/x`, 'again', { qos: 1, packetId: 1 });
    const p = await sub.expect(3);
    const at = Date.now();
    expect(p.dup).toBe(false);
    const r = await sub.expect(3, 3000);
    expect(Date.now() - at).toBeGreaterThanOrEqual(900);
    expect(r).toMatchObject({ packetId: p.packetId, qos: 1, dup: true, topic: `${t}/x` });
    expect(r.payload.toString()).toBe('again');
    // acknowledged: no more re-sends
    sub.send({ type: 4, packetId: p.packetId!, reasonCode: 0, properties: {} });
    expect(await sub.expectSilence(2200)).toBe(true);
  });

  it('MQTT 3.1.1: a PUBREL not answered by PUBCOMP is re-sent after message_retry_interval', async ({ onTestFinished }) => {
    const mine = poolForTest(onTestFinished);
    const t = fresh();
    const { client: sub } = await connect({ protocolVersion: 4, listener: 'tcp.retry' }, mine);
    await subscribeGranted(sub, `${t}/#`, 2);
    const { client: pub } = await connect({}, mine);
    await publishDone(pub, `${t}/x`, 'two', { qos: 2, packetId: 1 });
    const p = await sub.expect(3);
    sub.send({ type: 5, packetId: p.packetId!, reasonCode: 0, properties: {} });
    expect((await sub.expect(6)).packetId).toBe(p.packetId);
    const at = Date.now();
    // [MQTT-4.3.3-6] the PUBLISH is not sent again once PUBREL was
    expect(await sub.expect(6, 3000)).toMatchObject({ packetId: p.packetId });
    expect(Date.now() - at).toBeGreaterThanOrEqual(900);
  });
});
