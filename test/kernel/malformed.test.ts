/**
 * Malformed and hostile packets (SPEC sections 1 and 8): each closes only the connection that sent it —
 * after CONNACK a v5 client gets DISCONNECT with the reason code first, before CONNACK a v5 client gets a
 * CONNACK with the code, a 3.x client is just closed, a first packet that is not CONNECT is closed
 * without a word — and a client that was already connected keeps publishing and receiving.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Packet } from '@rmqtt-ts/kernel';
import { RawClient, RawClientPool, startBroker, subscribeGranted, type TestBroker } from '@rmqtt-ts/testkit';

const MAX_PACKET_SIZE = 1024;
const MAX_TOPIC_ALIASES = 4;

// ---- byte builders: the codec refuses to encode what these tests need to send ----

function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

function u16(n: number): number[] {
  return [(n >> 8) & 0xff, n & 0xff];
}

function str(s: string | Buffer | number[]): number[] {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s);
  return [...u16(b.length), ...b];
}

/** A packet from its first byte and its body; the Remaining Length is computed. */
function packet(first: number, body: number[]): Buffer {
  return Buffer.from([first, ...varint(body.length), ...body]);
}

interface PublishBytes {
  topic?: string | Buffer | number[];
  /** Fixed-header flags nibble (DUP, QoS, RETAIN). */
  flags?: number;
  packetId?: number;
  /** v5 property bytes (without the Property Length); undefined for 3.x. */
  props?: number[];
  payload?: string;
}

function publishBytes(o: PublishBytes): Buffer {
  const flags = o.flags ?? 0;
  const qos = (flags >> 1) & 3;
  const body = [
    ...str(o.topic ?? 't'),
    ...(qos > 0 ? u16(o.packetId ?? 1) : []),
    ...(o.props !== undefined ? [...varint(o.props.length), ...o.props] : []),
    ...Buffer.from(o.payload ?? 'x'),
  ];
  return packet(0x30 | flags, body);
}

/** A CONNECT with clean start, keepalive 60, the given client id bytes and (v5) property bytes. */
function connectBytes(version: 4 | 5, clientId: string | number[], props: number[] = [], extraFlags = 0, tail: number[] = []): Buffer {
  const body = [
    ...str('MQTT'),
    version,
    0x02 | extraFlags,
    ...u16(60),
    ...(version === 5 ? [...varint(props.length), ...props] : []),
    ...str(clientId),
    ...tail,
  ];
  return packet(0x10, body);
}

/** What the broker sent before it closed the connection, as a packet list. */
async function closedWith(c: RawClient): Promise<Packet[]> {
  return c.expectClose(3000);
}

function expectDisconnect(got: Packet[], reasonCode: number): void {
  expect(got).toHaveLength(1);
  const d = got[0]!;
  expect(d.type).toBe(14);
  expect((d as Extract<Packet, { type: 14 }>).reasonCode).toBe(reasonCode);
}

function expectConnack(got: Packet[], reasonCode: number): void {
  expect(got).toHaveLength(1);
  const c = got[0]!;
  expect(c.type).toBe(2);
  expect((c as Extract<Packet, { type: 2 }>).reasonCode).toBe(reasonCode);
  expect((c as Extract<Packet, { type: 2 }>).sessionPresent).toBe(false);
}

describe('malformed input closes only the offending connection', () => {
  let b: TestBroker;
  let port: number;
  let bystanderSub: RawClient;
  let bystanderPub: RawClient;
  let seq = 0;
  /** The bad clients of a test, destroyed after it. */
  const opened = new RawClientPool();
  /** The two well-behaved clients, kept across the tests. */
  const bystanders = new RawClientPool();

  beforeAll(async () => {
    b = await startBroker({ listeners: { 'tcp.external': { max_packet_size: MAX_PACKET_SIZE, max_topic_aliases: MAX_TOPIC_ALIASES } } });
    port = b.port();
    bystanderSub = await bystanders.connect(port, { protocolVersion: 5, clientId: 'bystander-sub' });
    bystanderPub = await bystanders.connect(port, { protocolVersion: 5, clientId: 'bystander-pub' });
    await subscribeGranted(bystanderSub, 'healthy/#', 1);
  });

  afterEach(() => {
    opened.destroyAll();
  });

  afterAll(async () => {
    bystanders.destroyAll();
    await b?.stop();
  });

  const connected = (version: 4 | 5): Promise<RawClient> => opened.connect(port, { protocolVersion: version, clientId: `bad-${++seq}` });

  const opening = async (version: 4 | 5): Promise<RawClient> => opened.track(await RawClient.open(port, { version }));

  /** The clients connected before the bad one still publish and receive, and are still open. */
  async function bystandersStillWork(): Promise<void> {
    const n = ++seq;
    await bystanderPub.publish(`healthy/${n}`, String(n), { qos: 1, packetId: (n % 65535) + 1 });
    const got = await bystanderSub.expect(3);
    expect(got.topic).toBe(`healthy/${n}`);
    expect(got.payload.toString()).toBe(String(n));
    bystanderSub.send({ type: 4, packetId: got.packetId!, reasonCode: 0, properties: {} });
    expect(bystanderSub.isClosed).toBe(false);
    expect(bystanderPub.isClosed).toBe(false);
  }

  describe('MQTT 5 after CONNACK: DISCONNECT with the reason code, then close', () => {
    it('a Remaining Length longer than 4 bytes gets 0x81 (Malformed Packet)', async () => {
      const c = await connected(5);
      c.send([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]);
      expectDisconnect(await closedWith(c), 0x81);
      await bystandersStillWork();
    });

    it('[MQTT-2.1.3-1] SUBSCRIBE with fixed-header flags 0 gets 0x81', async () => {
      const c = await connected(5);
      c.send(packet(0x80, [...u16(1), 0x00, ...str('a/b'), 0x00]));
      expectDisconnect(await closedWith(c), 0x81);
      await bystandersStillWork();
    });

    it('[MQTT-2.1.3-1] PUBACK with fixed-header flags 0x2 gets 0x81', async () => {
      const c = await connected(5);
      c.send([0x42, 0x02, 0x00, 0x01]);
      expectDisconnect(await closedWith(c), 0x81);
      await bystandersStillWork();
    });

    it('[MQTT-3.3.2-2] a PUBLISH topic with + gets 0x82 (Protocol Error)', async () => {
      const c = await connected(5);
      c.send(publishBytes({ topic: 'a/+/c', props: [] }));
      expectDisconnect(await closedWith(c), 0x82);
      await bystandersStillWork();
    });

    it('[MQTT-3.3.2-2] a PUBLISH topic with # gets 0x82 (Protocol Error)', async () => {
      const c = await connected(5);
      c.send(publishBytes({ topic: 'a/#', props: [] }));
      expectDisconnect(await closedWith(c), 0x82);
      await bystandersStillWork();
    });

    it('[MQTT-1.5.4-1] a PUBLISH topic that is not well-formed UTF-8 gets 0x81', async () => {
      const c = await connected(5);
      c.send(publishBytes({ topic: [0x61, 0x2f, 0xc3, 0x28], props: [] }));
      expectDisconnect(await closedWith(c), 0x81);
      await bystandersStillWork();
    });

    it('[MQTT-1.5.4-1] a PUBLISH topic holding a UTF-16 surrogate (ED A0 80) gets 0x81', async () => {
      const c = await connected(5);
      c.send(publishBytes({ topic: [0x61, 0xed, 0xa0, 0x80], props: [] }));
      expectDisconnect(await closedWith(c), 0x81);
      await bystandersStillWork();
    });

    it('[MQTT-1.5.4-2] a PUBLISH topic containing U+0000 gets 0x81', async () => {
      const c = await connected(5);
      c.send(publishBytes({ topic: [0x61, 0x00, 0x62], props: [] }));
      expectDisconnect(await closedWith(c), 0x81);
      await bystandersStillWork();
    });

    it('[MQTT-3.1.0-2] a second CONNECT gets 0x82', async () => {
      const c = await connected(5);
      c.send(connectBytes(5, `bad-${seq}`));
      expectDisconnect(await closedWith(c), 0x82);
      await bystandersStillWork();
    });

    it('a packet over max_packet_size gets 0x95 from its fixed header alone, before the body is sent', async () => {
      const c = await connected(5);
      // announce a 2000-byte PUBLISH and send no body: the broker must not wait for it
      c.send([0x30, ...varint(2000)]);
      expectDisconnect(await closedWith(c), 0x95);
      await bystandersStillWork();
    });

    it('a complete packet one byte over max_packet_size gets 0x95', async () => {
      const c = await connected(5);
      const header = 1 + 2; // type byte + two-byte Remaining Length
      const fixed = 2 + 1 + 1; // topic "t", Property Length
      const bytes = publishBytes({ topic: 't', props: [], payload: 'p'.repeat(MAX_PACKET_SIZE + 1 - header - fixed) });
      expect(bytes.length).toBe(MAX_PACKET_SIZE + 1);
      c.send(bytes);
      expectDisconnect(await closedWith(c), 0x95);
      await bystandersStillWork();
    });

    it('an unknown property identifier gets 0x81', async () => {
      const c = await connected(5);
      c.send(publishBytes({ topic: 'a', props: [0x7f, 0x00] }));
      expectDisconnect(await closedWith(c), 0x81);
      await bystandersStillWork();
    });

    it('a single-valued property given twice (Payload Format Indicator) gets 0x82', async () => {
      const c = await connected(5);
      c.send(publishBytes({ topic: 'a', props: [0x01, 0x00, 0x01, 0x00] }));
      expectDisconnect(await closedWith(c), 0x82);
      await bystandersStillWork();
    });

    it('[MQTT-3.3.2-8] Topic Alias 0 gets 0x94 (Topic Alias invalid)', async () => {
      const c = await connected(5);
      c.send(publishBytes({ topic: 'a', props: [0x23, ...u16(0)] }));
      expectDisconnect(await closedWith(c), 0x94);
      await bystandersStillWork();
    });

    it('[MQTT-3.3.2-9] a Topic Alias above the announced maximum gets 0x94', async () => {
      const c = await connected(5);
      c.send(publishBytes({ topic: 'a', props: [0x23, ...u16(MAX_TOPIC_ALIASES + 1)] }));
      expectDisconnect(await closedWith(c), 0x94);
      await bystandersStillWork();
    });

    it('[MQTT-3.3.1-4] a PUBLISH with QoS 3 gets 0x81', async () => {
      const c = await connected(5);
      c.send(publishBytes({ topic: 'a', flags: 0b0110, packetId: 1, props: [] }));
      expectDisconnect(await closedWith(c), 0x81);
      await bystandersStillWork();
    });

    it('a SUBACK (server-only packet) from a client gets 0x82', async () => {
      const c = await connected(5);
      c.send(packet(0x90, [...u16(1), 0x00, 0x00]));
      expectDisconnect(await closedWith(c), 0x82);
      await bystandersStillWork();
    });

    it('a malformed packet after valid ones in the same write: the valid ones are answered first', async () => {
      const c = await connected(5);
      c.send(Buffer.concat([Buffer.from([0xc0, 0x00]), publishBytes({ topic: 'a/+', props: [] })]));
      const got = await closedWith(c);
      expect(got.map((p) => p.type)).toEqual([13, 14]);
      expect((got[1] as Extract<Packet, { type: 14 }>).reasonCode).toBe(0x82);
      await bystandersStillWork();
    });
  });

  describe('MQTT 3.1.1 after CONNACK: closed without a packet (3.1.1 has no code for it)', () => {
    const cases: [string, () => Buffer][] = [
      ['a Remaining Length longer than 4 bytes', () => Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f])],
      ['[MQTT-2.1.3-1] SUBSCRIBE with fixed-header flags 0', () => packet(0x80, [...u16(1), ...str('a/b'), 0x00])],
      ['[MQTT-2.1.3-1] PUBACK with fixed-header flags 0x2', () => Buffer.from([0x42, 0x02, 0x00, 0x01])],
      ['[MQTT-3.3.2-2] a wildcard in a PUBLISH topic', () => publishBytes({ topic: 'a/#' })],
      ['[MQTT-1.5.4-1] a PUBLISH topic that is not well-formed UTF-8', () => publishBytes({ topic: [0x61, 0xff] })],
      ['[MQTT-1.5.4-2] a PUBLISH topic containing U+0000', () => publishBytes({ topic: [0x61, 0x00] })],
      ['[MQTT-3.1.0-2] a second CONNECT', () => connectBytes(4, 'again')],
      ['a packet over max_packet_size', () => Buffer.from([0x30, ...varint(2000)])],
      ['[MQTT-3.3.1-4] a PUBLISH with QoS 3', () => publishBytes({ topic: 'a', flags: 0b0110, packetId: 1 })],
      ['a SUBACK from a client', () => packet(0x90, [...u16(1), 0x00])],
    ];
    for (const [name, bytes] of cases) {
      it(`${name} closes the connection`, async () => {
        const c = await connected(4);
        c.send(bytes());
        expect(await closedWith(c)).toEqual([]);
        await bystandersStillWork();
      });
    }
  });

  describe('before CONNACK', () => {
    it('[MQTT-3.1.0-1] a first packet that is PINGREQ is closed without a word', async () => {
      const c = await opening(5);
      c.send([0xc0, 0x00]);
      expect(await closedWith(c)).toEqual([]);
      await bystandersStillWork();
    });

    it('[MQTT-3.1.0-1] a first packet that is PUBLISH is closed without a word', async () => {
      const c = await opening(5);
      c.send(publishBytes({ topic: 'healthy/sneak', props: [] }));
      expect(await closedWith(c)).toEqual([]);
      // and nothing it sent was routed
      expect(await bystanderSub.expectSilence(200)).toBe(true);
      await bystandersStillWork();
    });

    it('[MQTT-3.1.0-1] a first packet that is malformed and not CONNECT is closed without a word', async () => {
      const c = await opening(5);
      c.send([0x00, 0x00]);
      expect(await closedWith(c)).toEqual([]);
      await bystandersStillWork();
    });

    it('[MQTT-1.5.4-1] a v5 CONNECT whose client id is not well-formed UTF-8 gets CONNACK 0x81', async () => {
      const c = await opening(5);
      c.send(connectBytes(5, [0x63, 0xc3, 0x28]));
      expectConnack(await closedWith(c), 0x81);
      await bystandersStillWork();
    });

    it('[MQTT-1.5.4-2] a v5 CONNECT whose client id contains U+0000 gets CONNACK 0x81', async () => {
      const c = await opening(5);
      c.send(connectBytes(5, [0x63, 0x00, 0x64]));
      expectConnack(await closedWith(c), 0x81);
      await bystandersStillWork();
    });

    it('a v5 CONNECT with an unknown property identifier gets CONNACK 0x81', async () => {
      const c = await opening(5);
      c.send(connectBytes(5, 'unknown-prop', [0x7f, 0x00]));
      expectConnack(await closedWith(c), 0x81);
      await bystandersStillWork();
    });

    it('a v5 CONNECT with Session Expiry Interval given twice gets CONNACK 0x82', async () => {
      const c = await opening(5);
      c.send(connectBytes(5, 'dup-prop', [0x11, 0, 0, 0, 10, 0x11, 0, 0, 0, 10]));
      expectConnack(await closedWith(c), 0x82);
      await bystandersStillWork();
    });

    it('a v5 CONNECT over max_packet_size gets CONNACK 0x95', async () => {
      const c = await opening(5);
      // a User Property large enough to push the CONNECT over the listener's limit
      const big = 'v'.repeat(MAX_PACKET_SIZE);
      c.send(connectBytes(5, 'too-big', [0x26, ...str('k'), ...str(big)]));
      expectConnack(await closedWith(c), 0x95);
      await bystandersStillWork();
    });

    it('[MQTT-3.1.2-3] a v5 CONNECT with the reserved flag set gets CONNACK 0x81', async () => {
      const c = await opening(5);
      c.send(connectBytes(5, 'reserved', [], 0x01));
      expectConnack(await closedWith(c), 0x81);
      await bystandersStillWork();
    });

    it('[MQTT-1.5.4-1] a 3.1.1 CONNECT whose client id is not well-formed UTF-8 is closed without CONNACK', async () => {
      const c = await opening(4);
      c.send(connectBytes(4, [0x63, 0xc3, 0x28]));
      expect(await closedWith(c)).toEqual([]);
      await bystandersStillWork();
    });
  });
});
