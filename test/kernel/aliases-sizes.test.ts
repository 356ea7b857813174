/**
 * Topic aliases both ways and Maximum Packet Size both ways, on the wire. Raw clients for the bytes,
 * mqtt.js to show a real client resolves the aliases the broker assigns.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { encode, type ProtocolVersion, type PublishPacket, type QoS } from '@rmqtt-ts/kernel';
import { RawClient, RawClientPool, connectClient, connectTracked, endClient, publishPacket, recorder, startBroker, subscribeGranted, uniqueId, type RawConnectOptions, type TestBroker } from '@rmqtt-ts/testkit';

const pool = new RawClientPool();
const mqtts: MqttClient[] = [];

/** A v5 client unless told; the CONNACK whatever its reason code. */
const connectRaw = (port: number, options: RawConnectOptions = {}) => connectTracked(pool, port, { protocolVersion: 5, ...options });
/** A v5 client unless told, CONNACK 0 required. */
const rawClient = (port: number, options: RawConnectOptions = {}): Promise<RawClient> => pool.connect(port, { protocolVersion: 5, ...options });

/** A PUBLISH from `c` whose encoding is exactly `total` bytes (fixed header included). */
function publishOfSize(c: RawClient, total: number, topic: string, qos: QoS, version: ProtocolVersion): PublishPacket {
  const p = publishPacket(topic, Buffer.alloc(0), { qos, packetId: qos > 0 ? c.packetId() : undefined });
  const empty = encode(p, version).length;
  p.payload = Buffer.alloc(total - empty, 0x61);
  // the Remaining Length may grow by a byte; trim so the total stays exact
  const over = encode(p, version).length - total;
  if (over > 0) p.payload = p.payload.subarray(over);
  expect(encode(p, version).length).toBe(total);
  return p;
}

afterEach(async () => {
  pool.destroyAll();
  await Promise.all(mqtts.splice(0).map((c) => endClient(c, true)));
});

describe('topic aliases and packet sizes', () => {
  let b: TestBroker;
  /** max_topic_aliases 4 */
  let port: number;
  /** max_topic_aliases 0 */
  let noAlias: number;
  /** max_packet_size 100 */
  let small: number;

  beforeAll(async () => {
    b = await startBroker({
      listeners: {
        'tcp.external': { max_topic_aliases: 4 },
        'tcp.noalias': { max_topic_aliases: 0 },
        'tcp.small': { max_packet_size: 100 },
      },
    });
    port = b.port('tcp.external');
    noAlias = b.port('tcp.noalias');
    small = b.port('tcp.small');
  });
  afterAll(async () => {
    await b?.stop();
  });

  describe('inbound topic aliases', () => {
    it("CONNACK announces the listener's max_topic_aliases as Topic Alias Maximum", async () => {
      const { connack } = await connectRaw(port);
      expect(connack.properties.topicAliasMaximum).toBe(4);
    });

    it('[MQTT-3.3.2-12] a topic set with an alias and then sent by alias alone is delivered with the full topic', async () => {
      const sub = await rawClient(port);
      await subscribeGranted(sub, 'in/#');
      const pub = await rawClient(port);
      pub.send(publishPacket('in/alias/one', 'first', { properties: { topicAlias: 1 } }));
      pub.send(publishPacket('', 'second', { properties: { topicAlias: 1 } }));
      const first = await sub.expect(3);
      const second = await sub.expect(3);
      expect([first.topic, first.payload.toString()]).toEqual(['in/alias/one', 'first']);
      expect([second.topic, second.payload.toString()]).toEqual(['in/alias/one', 'second']);
      // the publisher's alias is its own business: nothing of it reaches a subscriber that announced none
      expect(first.properties.topicAlias).toBeUndefined();
      expect(second.properties.topicAlias).toBeUndefined();
    });

    it('[MQTT-3.3.2-12] the highest alias the broker announced is accepted', async () => {
      const sub = await rawClient(port);
      await subscribeGranted(sub, 'in/max');
      const pub = await rawClient(port);
      pub.send(publishPacket('in/max', 'a', { properties: { topicAlias: 4 } }));
      pub.send(publishPacket('', 'b', { properties: { topicAlias: 4 } }));
      expect((await sub.expect(3)).topic).toBe('in/max');
      expect((await sub.expect(3)).topic).toBe('in/max');
    });

    it('an alias set again with another topic maps to the new topic', async () => {
      const sub = await rawClient(port);
      await subscribeGranted(sub, 'in/remap/#');
      const pub = await rawClient(port);
      pub.send(publishPacket('in/remap/a', '1', { properties: { topicAlias: 2 } }));
      pub.send(publishPacket('in/remap/b', '2', { properties: { topicAlias: 2 } }));
      pub.send(publishPacket('', '3', { properties: { topicAlias: 2 } }));
      const topics: string[] = [];
      for (let i = 0; i < 3; i++) topics.push((await sub.expect(3)).topic);
      expect(topics).toEqual(['in/remap/a', 'in/remap/b', 'in/remap/b']);
    });

    it('[MQTT-3.3.2-8] Topic Alias 0 gets DISCONNECT 0x94', async () => {
      const c = await rawClient(port);
      c.send(publishPacket('in/zero', 'x', { properties: { topicAlias: 0 } }));
      const got = await c.expectClose();
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ type: 14, reasonCode: 0x94 });
    });

    it('[MQTT-3.3.2-9] a Topic Alias above the announced maximum gets DISCONNECT 0x94', async () => {
      const c = await rawClient(port);
      c.send(publishPacket('in/over', 'x', { properties: { topicAlias: 5 } }));
      const got = await c.expectClose();
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ type: 14, reasonCode: 0x94 });
    });

    it('an empty topic with an alias never set gets DISCONNECT 0x82', async () => {
      const c = await rawClient(port);
      c.send(publishPacket('', 'x', { properties: { topicAlias: 3 } }));
      const got = await c.expectClose();
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ type: 14, reasonCode: 0x82 });
    });

    it('[MQTT-3.3.2-7] aliases do not carry over to the next connection of the same session', async () => {
      const clientId = uniqueId('alias-resume');
      const first = await rawClient(port, { clientId, properties: { sessionExpiryInterval: 60 } });
      first.send(publishPacket('in/carry', 'x', { properties: { topicAlias: 1 } }));
      await first.disconnect();
      const { client: second, connack } = await connectRaw(port, { clientId, cleanStart: false, properties: { sessionExpiryInterval: 60 } });
      expect(connack.sessionPresent).toBe(true);
      second.send(publishPacket('', 'y', { properties: { topicAlias: 1 } }));
      const got = await second.expectClose();
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ type: 14, reasonCode: 0x82 });
    });

    it('[MQTT-3.2.2-18] a listener with max_topic_aliases 0 announces no Topic Alias Maximum and refuses any alias with 0x94', async () => {
      const { client, connack } = await connectRaw(noAlias);
      expect(connack.reasonCode).toBe(0);
      expect(connack.properties.topicAliasMaximum).toBeUndefined();
      client.send(publishPacket('in/none', 'x', { properties: { topicAlias: 1 } }));
      const got = await client.expectClose();
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ type: 14, reasonCode: 0x94 });
    });
  });

  describe('outbound topic aliases', () => {
    it('[MQTT-3.1.2-26] [MQTT-3.3.2-11] the first message on a topic carries topic and alias, later ones the alias alone', async () => {
      const sub = await rawClient(port, { properties: { topicAliasMaximum: 2 } });
      await subscribeGranted(sub, 'out/a/#');
      const pub = await rawClient(port);
      pub.send(publishPacket('out/a/x', '1'));
      pub.send(publishPacket('out/a/x', '2'));
      pub.send(publishPacket('out/a/x', '3'));
      const first = await sub.expect(3);
      expect(first.topic).toBe('out/a/x');
      expect(first.properties).toEqual({ topicAlias: 1 });
      for (const payload of ['2', '3']) {
        const later = await sub.expect(3);
        expect(later.topic).toBe('');
        expect(later.properties).toEqual({ topicAlias: 1 });
        expect(later.payload.toString()).toBe(payload);
      }
    });

    it('[MQTT-3.1.2-26] once every alias is in use a further topic arrives with its full name and no alias', async () => {
      const sub = await rawClient(port, { properties: { topicAliasMaximum: 2 } });
      await subscribeGranted(sub, 'out/b/#');
      const pub = await rawClient(port);
      for (const t of ['out/b/1', 'out/b/2', 'out/b/3', 'out/b/3', 'out/b/1', 'out/b/2']) pub.send(publishPacket(t, t));
      const got: [string, number | undefined][] = [];
      for (let i = 0; i < 6; i++) {
        const p = await sub.expect(3);
        got.push([p.topic, p.properties.topicAlias]);
      }
      expect(got).toEqual([
        ['out/b/1', 1],
        ['out/b/2', 2],
        ['out/b/3', undefined],
        ['out/b/3', undefined],
        ['', 1],
        ['', 2],
      ]);
    });

    it('[MQTT-3.1.2-27] a subscriber that announces no Topic Alias Maximum gets no aliases', async () => {
      const sub = await rawClient(port);
      await subscribeGranted(sub, 'out/c');
      const pub = await rawClient(port);
      pub.send(publishPacket('out/c', '1'));
      pub.send(publishPacket('out/c', '2'));
      for (let i = 0; i < 2; i++) {
        const p = await sub.expect(3);
        expect(p.topic).toBe('out/c');
        expect(p.properties).toEqual({});
      }
    });

    it('aliases are assigned per subscriber, over QoS 1 too', async () => {
      const a = await rawClient(port, { properties: { topicAliasMaximum: 3 } });
      await subscribeGranted(a, 'out/d/#', 1);
      const pub = await rawClient(port);
      pub.send(publishPacket('out/d/early', '1'));
      expect((await a.expect(3)).properties.topicAlias).toBe(1);
      // a subscriber arriving later starts its own numbering
      const late = await rawClient(port, { properties: { topicAliasMaximum: 3 } });
      await subscribeGranted(late, 'out/d/#', 1);
      await pub.publish('out/d/late', '2', { qos: 1 });
      const forA = await a.expect(3);
      const forLate = await late.expect(3);
      expect([forA.topic, forA.properties.topicAlias, forA.qos]).toEqual(['out/d/late', 2, 1]);
      expect([forLate.topic, forLate.properties.topicAlias, forLate.qos]).toEqual(['out/d/late', 1, 1]);
    });

    it('mqtt.js with topicAliasMaximum resolves the aliases the broker assigns', async () => {
      const sub = await connectClient(b.url('tcp.external'), { protocolVersion: 5, clientId: uniqueId('mqttjs'), properties: { topicAliasMaximum: 2 } });
      mqtts.push(sub);
      const rec = recorder(sub);
      await sub.subscribeAsync('out/e/#', { qos: 0 });
      const pub = await rawClient(port);
      const topics = ['out/e/a', 'out/e/b', 'out/e/a', 'out/e/c', 'out/e/b', 'out/e/c', 'out/e/a'];
      topics.forEach((t, i) => pub.send(publishPacket(t, String(i))));
      const got = await rec.waitFor(topics.length);
      expect(got.map((m) => m.topic)).toEqual(topics);
      expect(got.map((m) => m.payload.toString())).toEqual(topics.map((_, i) => String(i)));
      // the repeats did travel by alias
      expect(got[2]!.packet.properties?.topicAlias).toBe(1);
      expect(got[4]!.packet.properties?.topicAlias).toBe(2);
    });
  });

  describe('inbound Maximum Packet Size', () => {
    it("CONNACK announces the listener's max_packet_size", async () => {
      const { connack } = await connectRaw(small);
      expect(connack.properties.maximumPacketSize).toBe(100);
    });

    it('a PUBLISH of exactly max_packet_size bytes is accepted', async () => {
      const c = await rawClient(small);
      const p = publishOfSize(c, 100, 'size/edge', 1, 5);
      // the very packet built above: the same fields, so the same bytes
      const ack = await c.publish(p.topic, p.payload, { qos: 1, packetId: p.packetId });
      expect(ack?.reasonCode).toBe(0x10);
    });

    it('a v5 PUBLISH one byte over max_packet_size gets DISCONNECT 0x95', async () => {
      const c = await rawClient(small);
      c.send(publishOfSize(c, 101, 'size/over', 1, 5));
      const got = await c.expectClose();
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ type: 14, reasonCode: 0x95 });
    });

    it('a v3.1.1 PUBLISH over max_packet_size closes the connection without a word', async () => {
      const client = await pool.connect(small, { protocolVersion: 4, clientId: uniqueId('v3') });
      client.send(publishOfSize(client, 101, 'size/v3', 1, 4));
      expect(await client.expectClose()).toEqual([]);
    });

    it('the size is judged from the fixed header, before the body is sent', async () => {
      const c = await rawClient(small);
      // a QoS 0 PUBLISH announcing 1,000,000 bytes of Remaining Length, then only the topic's first bytes
      c.send([0x30, 0xc0, 0x84, 0x3d, 0x00, 0x04, 0x73, 0x69]);
      const got = await c.expectClose();
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ type: 14, reasonCode: 0x95 });
    });

    it('a CONNECT over max_packet_size gets CONNACK 0x95', async () => {
      const c = pool.track(await RawClient.open(small, { version: 5 }));
      c.send(RawClient.connectPacket({ protocolVersion: 5, properties: { userProperties: [['pad', 'x'.repeat(200)]] } }));
      const got = await c.expectClose();
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ type: 2, reasonCode: 0x95 });
    });
  });

  describe('outbound Maximum Packet Size', () => {
    it('[MQTT-3.1.2-24] [MQTT-3.1.2-25] a message over the subscriber\'s Maximum Packet Size is dropped for it, counted, and the connection goes on', async () => {
      const sub = await rawClient(port, { properties: { maximumPacketSize: 100 } });
      await subscribeGranted(sub, 'big/t', 1);
      const pub = await rawClient(port);
      const dropped = b.broker.metrics.get('messages.dropped');
      const tooLarge = b.broker.metrics.get('messages.dropped.packet_too_large');
      await pub.publish('big/t', Buffer.alloc(200, 0x62), { qos: 1 });
      expect(await sub.expectSilence(300)).toBe(true);
      expect(b.broker.metrics.get('messages.dropped')).toBe(dropped + 1);
      expect(b.broker.metrics.get('messages.dropped.packet_too_large')).toBe(tooLarge + 1);
      await pub.publish('big/t', 'small', { qos: 1 });
      const m = await sub.expect(3);
      expect(m.payload.toString()).toBe('small');
      expect(m.qos).toBe(1);
    });

    it('a message too large for one subscriber still reaches a subscriber without the limit', async () => {
      const limited = await rawClient(port, { properties: { maximumPacketSize: 100 } });
      const open = await rawClient(port);
      await subscribeGranted(limited, 'big/u', 1);
      await subscribeGranted(open, 'big/u', 1);
      const pub = await rawClient(port);
      await pub.publish('big/u', Buffer.alloc(200, 0x62), { qos: 1 });
      await pub.publish('big/u', 'small', { qos: 1 });
      const big = await open.expect(3);
      expect(big.payload).toEqual(Buffer.alloc(200, 0x62));
      expect((await open.expect(3)).payload.toString()).toBe('small');
      expect((await limited.expect(3)).payload.toString()).toBe('small');
    });

    it('a dropped oversized message does not use up a topic alias the client never learned', async () => {
      const sub = await rawClient(port, { properties: { maximumPacketSize: 100, topicAliasMaximum: 2 } });
      await subscribeGranted(sub, 'big/alias');
      const pub = await rawClient(port);
      pub.send(publishPacket('big/alias', Buffer.alloc(200, 0x62)));
      pub.send(publishPacket('big/alias', 'small'));
      const m = await sub.expect(3);
      expect(m.topic).toBe('big/alias');
      expect(m.properties).toEqual({ topicAlias: 1 });
      expect(m.payload.toString()).toBe('small');
    });
  });
});
