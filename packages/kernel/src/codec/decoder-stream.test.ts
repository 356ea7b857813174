import { describe, expect, it } from 'vitest';
import { DecodeError } from './decode-error.js';
import { Decoder } from './decoder.js';
import { encode } from './encoder.js';
import type { Packet } from './packets.js';

/** Deterministic PRNG so a failing split can be reproduced. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return function random(): number {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What a v5 client sends: CONNECT first, then a mix of packets, one of them larger than a typical chunk. */
const CLIENT_STREAM: Packet[] = [
  {
    type: 1,
    protocolName: 'MQTT',
    protocolVersion: 5,
    cleanStart: true,
    keepalive: 30,
    clientId: 'stream',
    will: { topic: 'w', payload: Buffer.from('bye'), qos: 0, retain: false, properties: { willDelayInterval: 5 } },
    username: undefined,
    password: undefined,
    properties: { receiveMaximum: 10, userProperties: [['a', '1'], ['a', '2']] },
  },
  { type: 8, packetId: 1, subscriptions: [{ filter: 'x/#', qos: 1, noLocal: true, retainAsPublished: false, retainHandling: 0 }], properties: {} },
  { type: 3, topic: 'x/1', payload: Buffer.from('small'), qos: 0, retain: false, dup: false, packetId: undefined, properties: {} },
  { type: 3, topic: 'x/2', payload: Buffer.alloc(70_000, 7), qos: 1, retain: true, dup: false, packetId: 2, properties: { contentType: 'bin' } },
  { type: 4, packetId: 9, reasonCode: 0, properties: {} },
  { type: 12 },
  { type: 3, topic: 'x/3', payload: Buffer.alloc(0), qos: 2, retain: false, dup: false, packetId: 3, properties: {} },
  { type: 6, packetId: 3, reasonCode: 0, properties: {} },
  { type: 10, packetId: 4, filters: ['x/#'], properties: {} },
  { type: 14, reasonCode: 0, properties: { sessionExpiryInterval: 0 } },
];
const CLIENT_BYTES = Buffer.concat(CLIENT_STREAM.map((p) => encode(p, 5)));

/** toEqual walks Buffers byte by byte, which is slow for the 70 kB payload; Buffer#equals is not. */
function expectClientStream(out: Packet[]): void {
  expect(out).toHaveLength(CLIENT_STREAM.length);
  out.forEach(function compare(packet, i) {
    const expected = CLIENT_STREAM[i]!;
    if (packet.type === 3 && expected.type === 3) {
      expect(packet.payload.equals(expected.payload)).toBe(true);
      expect({ ...packet, payload: null }).toEqual({ ...expected, payload: null });
    } else {
      expect(packet).toEqual(expected);
    }
  });
}

function drain(decoder: Decoder, into: Packet[]): void {
  for (let packet = decoder.next(); packet !== null; packet = decoder.next()) into.push(packet);
}

describe('Decoder streaming', () => {
  it('decodes a stream fed one byte at a time', () => {
    const decoder = new Decoder({ maxPacketSize: 0 });
    const out: Packet[] = [];
    for (let i = 0; i < CLIENT_BYTES.length; i++) {
      decoder.push(CLIENT_BYTES.subarray(i, i + 1));
      drain(decoder, out);
    }
    expectClientStream(out);
    expect(decoder.buffered).toBe(0);
  });

  it('decodes the same packets for random splits, pulling at random moments', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const random = mulberry32(seed);
      const decoder = new Decoder({ maxPacketSize: 0 });
      const out: Packet[] = [];
      let pos = 0;
      while (pos < CLIENT_BYTES.length) {
        const size = 1 + Math.floor(random() * (random() < 0.2 ? 20_000 : 40));
        decoder.push(CLIENT_BYTES.subarray(pos, pos + size));
        pos += size;
        if (random() < 0.5) drain(decoder, out);
      }
      drain(decoder, out);
      expectClientStream(out);
      expect(decoder.buffered).toBe(0);
    }
  });

  it('returns null on a partial packet and keeps its bytes', () => {
    const decoder = new Decoder({ maxPacketSize: 0 });
    const connect = encode(CLIENT_STREAM[0]!, 5);
    decoder.push(connect.subarray(0, connect.length - 1));
    expect(decoder.next()).toBeNull();
    expect(decoder.next()).toBeNull();
    expect(decoder.buffered).toBe(connect.length - 1);
    decoder.push(connect.subarray(connect.length - 1));
    expect(decoder.next()).toEqual(CLIENT_STREAM[0]);
    expect(decoder.buffered).toBe(0);
    expect(decoder.next()).toBeNull();
  });

  it('returns null on an empty decoder and on a lone first byte', () => {
    const decoder = new Decoder({ maxPacketSize: 0 });
    expect(decoder.next()).toBeNull();
    decoder.push(Buffer.from([0xc0]));
    expect(decoder.next()).toBeNull();
    decoder.push(Buffer.from([0x00]));
    expect(decoder.next()).toEqual({ type: 12 });
  });

  it('hands out several packets from one chunk one per next(), without parsing ahead', () => {
    const decoder = new Decoder({ maxPacketSize: 0 });
    decoder.push(CLIENT_BYTES);
    const out: Packet[] = [];
    let previous = decoder.buffered;
    for (let i = 0; i < CLIENT_STREAM.length; i++) {
      const packet = decoder.next();
      expect(packet).not.toBeNull();
      out.push(packet!);
      // Exactly one packet's bytes were consumed.
      expect(previous - decoder.buffered).toBe(encode(packet!, 5).length);
      previous = decoder.buffered;
    }
    expectClientStream(out);
    expect(decoder.next()).toBeNull();
  });

  it('throws for a malformed packet only when next() reaches it', () => {
    const decoder = new Decoder({ maxPacketSize: 0 });
    decoder.protocolVersion = 4;
    decoder.push(Buffer.from([0xc0, 0x00, 0x00, 0x00]));
    expect(decoder.next()).toEqual({ type: 12 });
    expect(() => decoder.next()).toThrow(DecodeError);
  });

  it('sets protocolVersion from the CONNECT it decodes', () => {
    const decoder = new Decoder({ maxPacketSize: 0 });
    expect(decoder.protocolVersion).toBe(0);
    decoder.push(CLIENT_BYTES);
    decoder.next();
    expect(decoder.protocolVersion).toBe(5);
  });

  it('copies payloads, correlation data and passwords out of the input', () => {
    const connect: Packet = {
      type: 1,
      protocolName: 'MQTT',
      protocolVersion: 5,
      cleanStart: true,
      keepalive: 0,
      clientId: 'c',
      will: { topic: 'w', payload: Buffer.from('will'), qos: 0, retain: false, properties: { correlationData: Buffer.from('cd') } },
      username: 'u',
      password: Buffer.from('secret'),
      properties: { authenticationData: Buffer.from('auth') },
    };
    const publish: Packet = {
      type: 3,
      topic: 't',
      payload: Buffer.from('payload'),
      qos: 0,
      retain: false,
      dup: false,
      packetId: undefined,
      properties: { correlationData: Buffer.from('corr') },
    };
    const input = Buffer.concat([encode(connect, 5), encode(publish, 5)]);
    const decoder = new Decoder({ maxPacketSize: 0 });
    decoder.push(input);
    const c = decoder.next() as Extract<Packet, { type: 1 }>;
    const p = decoder.next() as Extract<Packet, { type: 3 }>;
    input.fill(0xee);
    expect(p.payload.toString()).toBe('payload');
    expect(p.properties.correlationData!.toString()).toBe('corr');
    expect(c.password!.toString()).toBe('secret');
    expect(c.will!.payload.toString()).toBe('will');
    expect(c.will!.properties.correlationData!.toString()).toBe('cd');
    expect(c.properties.authenticationData!.toString()).toBe('auth');
  });

  it('copies only the spanning packet when a packet crosses chunks, keeping the tail for the next', () => {
    const first = encode(CLIENT_STREAM[2]!, 5);
    const second = encode(CLIENT_STREAM[5]!, 5);
    const decoder = new Decoder({ maxPacketSize: 0 });
    decoder.protocolVersion = 5;
    decoder.push(first.subarray(0, 3));
    decoder.push(Buffer.concat([first.subarray(3), second]));
    expect(decoder.next()).toEqual(CLIENT_STREAM[2]);
    expect(decoder.buffered).toBe(second.length);
    expect(decoder.next()).toEqual(CLIENT_STREAM[5]);
    expect(decoder.buffered).toBe(0);
  });

  it('applies a maxPacketSize changed after construction', () => {
    const decoder = new Decoder({ maxPacketSize: 0 });
    decoder.protocolVersion = 4;
    decoder.maxPacketSize = 3;
    decoder.push(Buffer.from([0x40, 0x02, 0x00, 0x01]));
    expect(() => decoder.next()).toThrow(expect.objectContaining({ reasonCode: 0x95 }));
    decoder.maxPacketSize = 4;
    expect(decoder.next()).toEqual({ type: 4, packetId: 1, reasonCode: 0, properties: {} });
  });
});
