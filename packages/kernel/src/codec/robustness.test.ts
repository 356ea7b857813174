import { describe, expect, it } from 'vitest';
import { DecodeError } from './decode-error.js';
import { Decoder } from './decoder.js';
import { encode } from './encoder.js';
import type { Packet, ProtocolVersion } from './packets.js';

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

const PROPS = { userProperties: [['k', 'v']] as [string, string][], reasonString: 'r' };
const SEED_PACKETS: Packet[] = [
  {
    type: 1,
    protocolName: 'MQTT',
    protocolVersion: 5,
    cleanStart: true,
    keepalive: 10,
    clientId: 'fuzz',
    will: { topic: 'w/t', payload: Buffer.from('w'), qos: 2, retain: true, properties: { willDelayInterval: 1, contentType: 'c' } },
    username: 'u',
    password: Buffer.from('p'),
    properties: { sessionExpiryInterval: 5, receiveMaximum: 3, requestProblemInformation: 1, userProperties: [['a', 'b']] },
  },
  { type: 2, sessionPresent: true, reasonCode: 0, properties: { maximumQoS: 1, assignedClientIdentifier: 'id', topicAliasMaximum: 2 } },
  {
    type: 3,
    topic: 'a/b/c',
    payload: Buffer.from('payload'),
    qos: 1,
    retain: true,
    dup: true,
    packetId: 77,
    properties: { subscriptionIdentifiers: [1, 300], topicAlias: 2, correlationData: Buffer.from('cd'), payloadFormatIndicator: 1 },
  },
  { type: 4, packetId: 5, reasonCode: 0x10, properties: PROPS },
  { type: 6, packetId: 6, reasonCode: 0, properties: {} },
  { type: 8, packetId: 7, subscriptions: [{ filter: 'x/+', qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 1 }], properties: { subscriptionIdentifiers: [9] } },
  { type: 9, packetId: 7, reasonCodes: [2, 0x80], properties: PROPS },
  { type: 10, packetId: 8, filters: ['x/+', 'y'], properties: {} },
  { type: 11, packetId: 8, reasonCodes: [0], properties: {} },
  { type: 12 },
  { type: 14, reasonCode: 0x8e, properties: { sessionExpiryInterval: 1, serverReference: 's' } },
  { type: 15, reasonCode: 0x18, properties: { authenticationMethod: 'm', authenticationData: Buffer.from('d') } },
];
const SEEDS: { version: ProtocolVersion; bytes: Buffer }[] = ([3, 4, 5] as const).flatMap((version) =>
  SEED_PACKETS.filter((p) => version === 5 || p.type !== 15).map((p) => {
    const packet = p.type === 1 ? { ...p, protocolVersion: version, protocolName: version === 3 ? 'MQIsdp' : 'MQTT' } : p;
    return { version, bytes: encode(packet, version) };
  }),
);

function mutate(input: Buffer, random: () => number): Buffer {
  const bytes = [...input];
  const count = 1 + Math.floor(random() * 4);
  const interesting = [0x00, 0x01, 0x02, 0x03, 0x7f, 0x80, 0xc0, 0xed, 0xff];
  for (let i = 0; i < count; i++) {
    const at = Math.floor(random() * (bytes.length + 1));
    const r = random();
    if (r < 0.35) bytes[at] = Math.floor(random() * 256);
    else if (r < 0.55) bytes[at] = interesting[Math.floor(random() * interesting.length)]!;
    else if (r < 0.7) bytes.splice(at, 0, Math.floor(random() * 256));
    else if (r < 0.85) bytes.splice(at, 1);
    else bytes.length = Math.min(bytes.length, at);
  }
  return Buffer.from(bytes);
}

/** Feeds `input` in random chunks and pulls every packet out; returns what came out or the error. */
function run(input: Buffer, version: 0 | ProtocolVersion, maxPacketSize: number, random: () => number): { packets: [Packet, number][]; error: unknown } {
  const decoder = new Decoder({ maxPacketSize });
  decoder.protocolVersion = version;
  const packets: [Packet, number][] = [];
  let pos = 0;
  try {
    while (pos < input.length) {
      const size = 1 + Math.floor(random() * 16);
      decoder.push(input.subarray(pos, pos + size));
      pos += size;
      // Every packet consumes at least two bytes, so this loop ends; the cap only turns a hang into a failure.
      for (let guard = 0; guard <= input.length; guard++) {
        const packet = decoder.next();
        if (packet === null) break;
        packets.push([packet, decoder.protocolVersion]);
      }
    }
    return { packets, error: undefined };
  } catch (error) {
    return { packets, error };
  }
}

function reencodes(packet: Packet, version: number): void {
  if (version === 0 || packet.type === 1) return expectSame(packet, packet.type === 1 ? packet.protocolVersion : 4);
  return expectSame(packet, version as ProtocolVersion);
}

/** Whatever the decoder accepts, the encoder writes back in a form the decoder reads the same way. */
function expectSame(packet: Packet, version: ProtocolVersion): void {
  const decoder = new Decoder({ maxPacketSize: 0 });
  if (packet.type !== 1) decoder.protocolVersion = version;
  decoder.push(encode(packet, version));
  const again = decoder.next();
  // MQTT 3.1 has no Session Present flag, so the encoder writes 0 where a broken peer may have sent 1.
  if (packet.type === 2 && version === 3) expect(again).toEqual({ ...packet, sessionPresent: false });
  else expect(again).toEqual(packet);
}

describe('decoder robustness', () => {
  it('never throws anything but DecodeError on random bytes', () => {
    const random = mulberry32(1234);
    for (let i = 0; i < 2000; i++) {
      const input = Buffer.alloc(Math.floor(random() * 48));
      for (let j = 0; j < input.length; j++) input[j] = Math.floor(random() * 256);
      // Bias the first byte toward valid types so the bodies get exercised, not just the header checks.
      if (input.length > 0 && random() < 0.7) input[0] = ((1 + Math.floor(random() * 15)) << 4) | [0, 2, 0, 0, 2][Math.floor(random() * 5)]!;
      if (input.length > 1 && random() < 0.7) input[1] = Math.min(127, input.length - 2);
      const version = ([0, 3, 4, 5] as const)[Math.floor(random() * 4)]!;
      const { packets, error } = run(input, version, random() < 0.2 ? 16 : 0, random);
      if (error !== undefined) expect(error).toBeInstanceOf(DecodeError);
      for (const [packet, v] of packets) reencodes(packet, v);
    }
  });

  it('never throws anything but DecodeError on mutated valid packets, and what it accepts re-encodes', () => {
    const random = mulberry32(42);
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < 4000; i++) {
      const seed = SEEDS[Math.floor(random() * SEEDS.length)]!;
      const input = mutate(seed.bytes, random);
      const { packets, error } = run(input, seed.bytes[0]! >> 4 === 1 ? 0 : seed.version, 0, random);
      if (error !== undefined) {
        expect(error).toBeInstanceOf(DecodeError);
        rejected++;
      }
      accepted += packets.length;
      for (const [packet, v] of packets) reencodes(packet, v);
    }
    // Both outcomes must be well represented, or the mutations are not testing anything.
    expect(accepted).toBeGreaterThan(200);
    expect(rejected).toBeGreaterThan(1000);
  });

  it('decodes every unmutated seed', () => {
    for (const seed of SEEDS) {
      const { packets, error } = run(seed.bytes, seed.bytes[0]! >> 4 === 1 ? 0 : seed.version, 0, Math.random);
      expect(error).toBeUndefined();
      expect(packets).toHaveLength(1);
    }
  });
});
