/**
 * Flow control both ways: the outbound inflight window min(listener max_inflight, client Receive
 * Maximum) with the queue behind it, and the inbound limits (v5 Receive Maximum → DISCONNECT 0x93, v3
 * max_awaiting_rel).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Packet } from '@rmqtt-ts/kernel';
import { RawClientPool, connectAccepted, ping, publishPacket, startBroker, subscribeGranted, type PacketOf, type RawClient, type RawConnectOptions, type TestBroker } from '@rmqtt-ts/testkit';

type PublishPacket = Extract<Packet, { type: 3 }>;

let b: TestBroker;
const pool = new RawClientPool();
let seq = 0;
const fresh = (): string => `fc${++seq}`;

beforeAll(async () => {
  b = await startBroker({
    listeners: {
      'tcp.external': {},
      'tcp.small': { max_inflight: 2 },
      'tcp.in': { max_inflight: 3 },
      'tcp.v3': { max_inflight: 2, max_awaiting_rel: 4 },
    },
  });
});
afterEach(() => {
  pool.destroyAll();
});
afterAll(async () => {
  await b?.stop();
});

/** A v5 client unless told, on the listener named (tcp.external by default), CONNACK 0 required. */
function connect({ listener, ...options }: RawConnectOptions & { listener?: string } = {}): Promise<{ client: RawClient; connack: PacketOf<2> }> {
  return connectAccepted(pool, b.port(listener), { protocolVersion: 5, ...options });
}

const puback = (packetId: number): Packet => ({ type: 4, packetId, reasonCode: 0, properties: {} });
const pubrel = (packetId: number): Packet => ({ type: 6, packetId, reasonCode: 0, properties: {} });

describe('outbound inflight window', () => {
  it('[MQTT-3.3.4-9] [MQTT-4.9.0-2] with Receive Maximum 2 the broker sends exactly 2 unacknowledged QoS 1 PUBLISHes; the third follows a PUBACK', async () => {
    const t = fresh();
    const { client: sub } = await connect({ properties: { receiveMaximum: 2 } });
    await subscribeGranted(sub, `${t}/#`, 1);
    const { client: pub } = await connect();
    for (let i = 1; i <= 3; i++) await pub.publish(`${t}/x`, `m${i}`, { qos: 1, packetId: i });
    const a = await sub.expect(3);
    const c = await sub.expect(3);
    expect([a.payload.toString(), c.payload.toString()]).toEqual(['m1', 'm2']);
    expect(await sub.expectSilence(300)).toBe(true);
    sub.send(puback(a.packetId!));
    const third = await sub.expect(3);
    expect(third.payload.toString()).toBe('m3');
    expect(third.packetId).not.toBe(c.packetId);
  });

  it('messages beyond the window queue and arrive in publish order, never more than the window outstanding', async () => {
    const t = fresh();
    const { client: sub } = await connect({ properties: { receiveMaximum: 2 } });
    await subscribeGranted(sub, `${t}/#`, 1);
    const { client: pub } = await connect();
    for (let i = 1; i <= 8; i++) await pub.publish(`${t}/x`, `m${i}`, { qos: 1, packetId: i });
    const outstanding: PublishPacket[] = [await sub.expect(3), await sub.expect(3)];
    const order = outstanding.map((p) => p.payload.toString());
    while (order.length < 8) {
      expect(await sub.expectSilence(100)).toBe(true);
      sub.send(puback(outstanding.shift()!.packetId!));
      const p = await sub.expect(3);
      expect(outstanding.map((o) => o.packetId)).not.toContain(p.packetId);
      outstanding.push(p);
      order.push(p.payload.toString());
    }
    expect(order).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8']);
  });

  it('a QoS 0 message published while QoS 1 messages wait behind a full window is delivered after them, in order', async () => {
    const t = fresh();
    const { client: sub } = await connect({ properties: { receiveMaximum: 1 } });
    await subscribeGranted(sub, `${t}/#`, 1);
    const { client: pub } = await connect();
    await pub.publish(`${t}/x`, 'm1', { qos: 1, packetId: 1 });
    await pub.publish(`${t}/x`, 'm2', { qos: 1, packetId: 2 });
    pub.send(publishPacket(`${t}/x`, 'm3'));
    await ping(pub);
    const p = await sub.expect(3);
    expect(p.payload.toString()).toBe('m1');
    expect(await sub.expectSilence(200)).toBe(true);
    sub.send(puback(p.packetId!));
    const rest = [await sub.expect(3), await sub.expect(3)];
    expect(rest.map((r) => [r.payload.toString(), r.qos])).toEqual([
      ['m2', 1],
      ['m3', 0],
    ]);
  });

  it('[MQTT-3.3.4-9] QoS 2: the slot is freed by PUBCOMP; PUBREC alone does not free it', async () => {
    const t = fresh();
    const { client: sub } = await connect({ properties: { receiveMaximum: 1 } });
    await subscribeGranted(sub, `${t}/#`, 2);
    const { client: pub } = await connect();
    for (let i = 1; i <= 2; i++) {
      await pub.publish(`${t}/x`, `q2-${i}`, { qos: 2, packetId: i });
    }
    const p = await sub.expect(3);
    expect(p.payload.toString()).toBe('q2-1');
    sub.send({ type: 5, packetId: p.packetId!, reasonCode: 0, properties: {} });
    expect((await sub.expect(6)).packetId).toBe(p.packetId);
    expect(await sub.expectSilence(200)).toBe(true);
    sub.send({ type: 7, packetId: p.packetId!, reasonCode: 0, properties: {} });
    expect((await sub.expect(3)).payload.toString()).toBe('q2-2');
  });

  it('[MQTT-4.4.0-2] a PUBREC with a failure code ends the exchange (no PUBREL) and frees the slot', async () => {
    const t = fresh();
    const { client: sub } = await connect({ properties: { receiveMaximum: 1 } });
    await subscribeGranted(sub, `${t}/#`, 2);
    const { client: pub } = await connect();
    for (let i = 1; i <= 2; i++) {
      await pub.publish(`${t}/x`, `q2-${i}`, { qos: 2, packetId: i });
    }
    const p = await sub.expect(3);
    sub.send({ type: 5, packetId: p.packetId!, reasonCode: 0x80, properties: {} });
    const next = await sub.expect(3);
    expect(next.payload.toString()).toBe('q2-2');
  });

  it("the listener's max_inflight bounds the window when the client's Receive Maximum is larger", async () => {
    const t = fresh();
    const { client: sub } = await connect({ listener: 'tcp.small', properties: { receiveMaximum: 50 } });
    await subscribeGranted(sub, `${t}/#`, 1);
    const { client: pub } = await connect();
    for (let i = 1; i <= 3; i++) await pub.publish(`${t}/x`, `m${i}`, { qos: 1, packetId: i });
    const a = await sub.expect(3);
    await sub.expect(3);
    expect(await sub.expectSilence(300)).toBe(true);
    sub.send(puback(a.packetId!));
    expect((await sub.expect(3)).payload.toString()).toBe('m3');
  });

  it("a v3.1.1 subscriber's window is the listener's max_inflight", async () => {
    const t = fresh();
    const { client: sub } = await connect({ protocolVersion: 4, listener: 'tcp.small' });
    await subscribeGranted(sub, `${t}/#`, 1);
    const { client: pub } = await connect();
    for (let i = 1; i <= 3; i++) await pub.publish(`${t}/x`, `m${i}`, { qos: 1, packetId: i });
    const a = await sub.expect(3);
    await sub.expect(3);
    expect(await sub.expectSilence(300)).toBe(true);
    sub.send(puback(a.packetId!));
    expect((await sub.expect(3)).payload.toString()).toBe('m3');
  });
});

describe('inbound flow control', () => {
  it("CONNACK Receive Maximum is the listener's max_inflight, whatever the client sent", async () => {
    const high = await connect({ listener: 'tcp.in', properties: { receiveMaximum: 100 } });
    expect(high.connack.properties.receiveMaximum).toBe(3);
    const low = await connect({ listener: 'tcp.in', properties: { receiveMaximum: 1 } });
    expect(low.connack.properties.receiveMaximum).toBe(3);
  });

  it('a v5 client sending more than Receive Maximum QoS 2 PUBLISHes without PUBREL gets DISCONNECT 0x93', async () => {
    const t = fresh();
    const { client } = await connect({ listener: 'tcp.in' });
    for (let i = 1; i <= 3; i++) {
      client.send(publishPacket(`${t}/x`, `m${i}`, { qos: 2, packetId: i }));
      expect((await client.expect(5)).packetId).toBe(i);
    }
    client.send(publishPacket(`${t}/x`, 'm4', { qos: 2, packetId: 4 }));
    const got = await client.expectClose();
    expect(got.map((p) => p.type)).toEqual([14]);
    expect((got[0] as Extract<Packet, { type: 14 }>).reasonCode).toBe(0x93);
  });

  it('unreleased QoS 2 messages and a QoS 1 PUBLISH together over Receive Maximum get DISCONNECT 0x93', async () => {
    const t = fresh();
    const { client } = await connect({ listener: 'tcp.in' });
    for (let i = 1; i <= 3; i++) {
      client.send(publishPacket(`${t}/x`, `m${i}`, { qos: 2, packetId: i }));
      await client.expect(5);
    }
    client.send(publishPacket(`${t}/x`, 'q1', { qos: 1, packetId: 4 }));
    const got = await client.expectClose();
    expect(got).toEqual([expect.objectContaining({ type: 14, reasonCode: 0x93 })]);
  });

  it('[MQTT-4.3.3-10] re-sending an unreleased QoS 2 PUBLISH (DUP=1) at the limit is not a new message: PUBREC, no DISCONNECT', async () => {
    const t = fresh();
    const { client } = await connect({ listener: 'tcp.in' });
    for (let i = 1; i <= 3; i++) {
      client.send(publishPacket(`${t}/x`, `m${i}`, { qos: 2, packetId: i }));
      await client.expect(5);
    }
    client.send(publishPacket(`${t}/x`, 'm1', { qos: 2, packetId: 1, dup: true }));
    expect(await client.expect(5)).toMatchObject({ packetId: 1, reasonCode: 0 });
    await ping(client);
  });

  it('a v5 client that keeps within Receive Maximum by releasing its QoS 2 messages is never disconnected', async () => {
    const t = fresh();
    const { client } = await connect({ listener: 'tcp.in' });
    const unreleased: number[] = [];
    for (let i = 1; i <= 30; i++) {
      if (unreleased.length === 3) {
        const id = unreleased.shift()!;
        client.send(pubrel(id));
        expect(await client.expect(7)).toMatchObject({ packetId: id, reasonCode: 0 });
      }
      client.send(publishPacket(`${t}/x`, `m${i}`, { qos: 2, packetId: i }));
      expect((await client.expect(5)).packetId).toBe(i);
      unreleased.push(i);
    }
    await ping(client);
  });

  it('a v3.1.1 client is not held to max_inflight and is closed only above max_awaiting_rel unreleased QoS 2 messages', async () => {
    const t = fresh();
    // max_inflight 2, max_awaiting_rel 4 on this listener
    const { client } = await connect({ protocolVersion: 4, listener: 'tcp.v3' });
    for (let i = 1; i <= 4; i++) {
      client.send(publishPacket(`${t}/x`, `m${i}`, { qos: 2, packetId: i }));
      expect((await client.expect(5)).packetId).toBe(i);
    }
    await ping(client);
    client.send(publishPacket(`${t}/x`, 'm5', { qos: 2, packetId: 5 }));
    // 3.1.1 has no DISCONNECT from the server: the connection just closes
    expect(await client.expectClose()).toEqual([]);
  });

  it('a v3.1.1 client that releases its QoS 2 messages stays within max_awaiting_rel', async () => {
    const t = fresh();
    const { client } = await connect({ protocolVersion: 4, listener: 'tcp.v3' });
    for (let round = 0; round < 3; round++) {
      for (let i = 1; i <= 4; i++) {
        client.send(publishPacket(`${t}/x`, `m${i}`, { qos: 2, packetId: i }));
        expect((await client.expect(5)).packetId).toBe(i);
      }
      for (let i = 1; i <= 4; i++) {
        client.send(pubrel(i));
        expect((await client.expect(7)).packetId).toBe(i);
      }
    }
    await ping(client);
  });
});
