/**
 * max_qos_allowed on inbound PUBLISH: announced as Maximum QoS, and a PUBLISH above it ends the
 * connection — v5 with DISCONNECT 0x9B [MQTT-3.2.2-11], v3 by closing (3.1.1 has no code for it).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RawClientPool, connectTracked, startBroker, type RawClient, type TestBroker } from '@rmqtt-ts/testkit';

let b: TestBroker;
const pool = new RawClientPool();

beforeAll(async () => {
  b = await startBroker({ listeners: { 'tcp.external': { max_qos_allowed: 1 } } });
});
afterEach(() => {
  pool.destroyAll();
});
afterAll(async () => {
  await b?.stop();
});

const client = (protocolVersion: 4 | 5, clientId: string): Promise<RawClient> => pool.connect(b.port(), { protocolVersion, clientId });

describe('max_qos_allowed on inbound PUBLISH', () => {
  it('is announced as Maximum QoS in the v5 CONNACK', async () => {
    const { connack } = await connectTracked(pool, b.port(), { protocolVersion: 5, clientId: 'mq-announce' });
    expect(connack.properties.maximumQoS).toBe(1);
  });

  it('[MQTT-3.2.2-11] a v5 PUBLISH above it gets DISCONNECT 0x9B and the connection closes', async () => {
    const c = await client(5, 'mq-v5');
    c.send({ type: 3, topic: 'q/2', payload: Buffer.from('x'), qos: 2, retain: false, dup: false, packetId: 1, properties: {} });
    const got = await c.expectClose();
    expect(got.map((p) => p.type)).toEqual([14]);
    expect(got[0]!.type === 14 && got[0]!.reasonCode).toBe(0x9b);
  });

  it('a v3.1.1 PUBLISH above it closes the connection without a packet', async () => {
    const c = await client(4, 'mq-v4');
    c.send({ type: 3, topic: 'q/2', payload: Buffer.from('x'), qos: 2, retain: false, dup: false, packetId: 1, properties: {} });
    expect(await c.expectClose()).toEqual([]);
  });

  it('a PUBLISH at the maximum is accepted and not delivered to others above their grant', async () => {
    const sub = await client(5, 'mq-sub');
    const suback = await sub.subscribe({ filter: 'q/#', qos: 2 });
    expect(suback.reasonCodes).toEqual([1]); // granted QoS capped at the maximum
    const pub = await client(5, 'mq-pub');
    const ack = await pub.publish('q/1', 'ok', { qos: 1, packetId: 7 });
    expect(ack?.packetId).toBe(7);
    expect(ack?.reasonCode).toBe(0);
    const msg = await sub.expect(3);
    expect(msg.qos).toBe(1);
    expect(msg.payload.toString()).toBe('ok');
  });
});
