import { describe, expect, it } from 'vitest';
import { Decoder } from './decoder.js';
import { encode } from './encoder.js';
import type { Packet, Properties, ProtocolVersion, PublishPacket, QoS } from './packets.js';
import { propertiesLength, PropertyId } from './properties.js';
import { encodePublishHeader, publishPacketIdOffset } from './publish-encoder.js';
import { PacketType } from './packets.js';

const PROPERTIES: Properties = {
  payloadFormatIndicator: 1,
  messageExpiryInterval: 30,
  contentType: 'text/plain; charset=utf-8',
  responseTopic: 'reply/ü',
  correlationData: Buffer.from([9, 8, 7]),
  userProperties: [
    ['a', '1'],
    ['a', '1'],
  ],
  subscriptionIdentifiers: [5, 20_000],
  topicAlias: 4,
};

function publish(qos: QoS, payload: Buffer, properties: Properties, topic = 'topic/ä/1'): PublishPacket {
  return { type: 3, topic, payload, qos, retain: qos === 1, dup: qos === 2, packetId: qos > 0 ? 0x1234 : undefined, properties };
}

describe('encodePublishHeader', () => {
  const cases: [ProtocolVersion, QoS, number, Properties][] = [];
  for (const version of [3, 4, 5] as const) {
    for (const qos of [0, 1, 2] as const) {
      for (const size of [0, 5, 200, 20_000]) cases.push([version, qos, size, size === 5 ? {} : PROPERTIES]);
    }
  }

  it.each(cases)('header + payload equals encode() (version %i, QoS %i, %i payload bytes)', (version, qos, size, properties) => {
    const packet = publish(qos, Buffer.alloc(size, 0x5a), properties);
    const header = encodePublishHeader(packet.topic, qos, packet.retain, packet.dup, packet.packetId ?? 0, properties, size, version);
    expect(Buffer.concat([header, packet.payload]).equals(encode(packet, version))).toBe(true);
  });

  it('accepts undefined properties as none', () => {
    const header = encodePublishHeader('t', 0, false, false, 0, undefined, 1, 5);
    expect([...header]).toEqual([0x30, 5, 0, 1, 0x74, 0]);
  });

  it.each([1, 2] as const)('publishPacketIdOffset lets a shared QoS %i header be patched per subscriber', (qos) => {
    const payload = Buffer.from('shared');
    for (const version of [4, 5] as const) {
      const shared = encodePublishHeader('a/b', qos, false, false, 0, PROPERTIES, payload.length, version);
      const offset = publishPacketIdOffset(shared);
      for (const packetId of [1, 300, 65535]) {
        const copy = Buffer.from(shared);
        copy.writeUInt16BE(packetId, offset);
        const decoder = new Decoder({ maxPacketSize: 0 });
        decoder.protocolVersion = version;
        decoder.push(Buffer.concat([copy, payload]));
        expect(decoder.next()).toMatchObject({ type: 3, topic: 'a/b', qos, packetId, payload });
      }
    }
  });

  it('finds the packet id behind a multi-byte Remaining Length and a long topic', () => {
    const topic = 't'.repeat(1000);
    const header = encodePublishHeader(topic, 1, false, false, 0xbeef, undefined, 100_000, 4);
    const offset = publishPacketIdOffset(header);
    expect(offset).toBe(1 + 3 + 2 + 1000);
    expect(header.readUInt16BE(offset)).toBe(0xbeef);
  });

  it('leaves out properties a PUBLISH may not carry', () => {
    const header = encodePublishHeader('t', 0, false, false, 0, { reasonString: 'no', sessionExpiryInterval: 1 }, 0, 5);
    expect([...header]).toEqual([0x30, 4, 0, 1, 0x74, 0]);
  });
});

describe('propertiesLength', () => {
  it('counts the encoded property list without its Property Length', () => {
    expect(propertiesLength(undefined)).toBe(0);
    expect(propertiesLength({})).toBe(0);
    expect(propertiesLength({ topicAlias: 1 })).toBe(3);
    expect(propertiesLength({ contentType: 'ab', userProperties: [['k', 'v']] })).toBe(5 + 7);
    expect(propertiesLength({ subscriptionIdentifiers: [1, 128] })).toBe(2 + 3);
  });

  it('counts only what the given packet type may carry', () => {
    expect(propertiesLength({ reasonString: 'x', topicAlias: 1 }, PacketType.PUBACK)).toBe(4);
    expect(propertiesLength({ reasonString: 'x', topicAlias: 1 }, PacketType.PUBLISH)).toBe(3);
  });

  it('matches the bytes the encoder writes', () => {
    const packet = publish(1, Buffer.alloc(0), PROPERTIES);
    const withProps = encode(packet, 5);
    const without = encode({ ...packet, properties: {} }, 5);
    const length = propertiesLength(PROPERTIES, PacketType.PUBLISH);
    expect(withProps.length - without.length).toBe(length + (length >= 128 ? 1 : 0));
    expect(PropertyId.TOPIC_ALIAS).toBe(0x23);
  });
});

describe('encoder details', () => {
  it('drops properties and v5-only fields for 3.x', () => {
    const v5Only: Packet = { type: 4, packetId: 7, reasonCode: 0x10, properties: { reasonString: 'x' } };
    expect([...encode(v5Only, 4)]).toEqual([0x40, 2, 0, 7]);
    expect([...encode({ type: 14, reasonCode: 0x8e, properties: { reasonString: 'x' } }, 4)]).toEqual([0xe0, 0]);
    expect([...encode({ type: 11, packetId: 1, reasonCodes: [0x11], properties: {} }, 4)]).toEqual([0xb0, 2, 0, 1]);
  });

  it('shortens MQTT 5 acks as the standard allows', () => {
    expect([...encode({ type: 4, packetId: 7, reasonCode: 0, properties: {} }, 5)]).toEqual([0x40, 2, 0, 7]);
    expect([...encode({ type: 6, packetId: 7, reasonCode: 0x92, properties: {} }, 5)]).toEqual([0x62, 3, 0, 7, 0x92]);
    expect([...encode({ type: 14, reasonCode: 0, properties: {} }, 5)]).toEqual([0xe0, 0]);
    expect([...encode({ type: 14, reasonCode: 0x04, properties: {} }, 5)]).toEqual([0xe0, 1, 0x04]);
  });

  it('leaves out properties the packet type may not carry (MQTT 5.0 table 2-4)', () => {
    const packet: Packet = { type: 4, packetId: 1, reasonCode: 0, properties: { topicAlias: 3, willDelayInterval: 5 } };
    expect([...encode(packet, 5)]).toEqual([0x40, 2, 0, 1]);
  });

  it('refuses what the wire cannot carry', () => {
    const long = 'x'.repeat(70_000);
    expect(() => encode({ type: 10, packetId: 1, filters: [long], properties: {} }, 4)).toThrow(RangeError);
    expect(() => encode({ type: 15, reasonCode: 0, properties: {} }, 4)).toThrow(RangeError);
    expect(() => encode({ type: 3, topic: 't', payload: Buffer.alloc(0), qos: 1, retain: false, dup: false, packetId: undefined, properties: {} }, 4)).toThrow(
      RangeError,
    );
  });

  it('encodes a Remaining Length that needs several varint bytes', () => {
    const packet: Packet = { type: 3, topic: 't', payload: Buffer.alloc(2_100_000, 1), qos: 0, retain: false, dup: false, packetId: undefined, properties: {} };
    const buf = encode(packet, 4);
    expect(buf.length).toBe(1 + 4 + 3 + 2_100_000);
    const decoder = new Decoder({ maxPacketSize: 0 });
    decoder.protocolVersion = 4;
    decoder.push(buf);
    const decoded = decoder.next() as typeof packet;
    // Buffer#equals: a deep toEqual over 2 MB would dominate the suite's run time.
    expect(decoded.payload.equals(packet.payload)).toBe(true);
    expect({ ...decoded, payload: null }).toEqual({ ...packet, payload: null });
  });
});
