import { describe, expect, it } from 'vitest';
import { DecodeError } from './decode-error.js';
import { Decoder } from './decoder.js';
import type { Packet } from './packets.js';
import { MALFORMED, PROTOCOL, bytes, decode, expectCode, packet, props, raw, u16, varint, type Bytes } from './raw-bytes.test-helpers.js';


describe('fixed header', () => {
  it('rejects a Remaining Length of more than 4 bytes', () => {
    expectCode(4, Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), MALFORMED);
  });

  it('refuses a packet over maxPacketSize from the fixed header alone [MQTT-3.2.2-15]', () => {
    const decoder = new Decoder({ maxPacketSize: 1024 * 1024 });
    decoder.protocolVersion = 4;
    decoder.push(Buffer.from([0x30, ...varint(10 * 1024 * 1024)]));
    expect(decoder.buffered).toBe(5);
    expect(() => decoder.next()).toThrow(expect.objectContaining({ name: 'DecodeError', reasonCode: 0x95 }));
  });

  it('counts the whole packet, fixed header included, against maxPacketSize', () => {
    const puback = Buffer.from([0x40, 0x02, 0x00, 0x01]);
    expect(decode(4, puback, 4)).toEqual({ type: 4, packetId: 1, reasonCode: 0, properties: {} });
    expect(() => decode(4, puback, 3)).toThrow(expect.objectContaining({ reasonCode: 0x95 }));
  });

  it('has no limit when maxPacketSize is 0', () => {
    const decoder = new Decoder({ maxPacketSize: 0 });
    decoder.push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]));
    expect(decoder.next()).toBeNull();
  });

  it('rejects packet type 0', () => {
    expectCode(4, Buffer.from([0x00, 0x00]), MALFORMED);
  });

  it.each([
    ['PUBREL with flags 0000', 0x60],
    ['SUBSCRIBE with flags 0000', 0x80],
    ['UNSUBSCRIBE with flags 0011', 0xa3],
    ['CONNECT with flags 0001', 0x11],
    ['PUBACK with flags 0010', 0x42],
    ['PINGREQ with flags 1000', 0xc8],
    ['DISCONNECT with flags 0001', 0xe1],
  ])('rejects reserved fixed-header flags: %s [MQTT-2.1.3-1]', (_name, first) => {
    expectCode(4, Buffer.from([first, 0x00]), MALFORMED);
  });

  it('rejects the DUP flag on PUBREL for 3.1.1 but accepts it for 3.1, where re-sent PUBRELs carry it', () => {
    const pubrel = Buffer.from([0x6a, 0x02, 0x00, 0x05]);
    expectCode(4, pubrel, MALFORMED);
    expect(decode(3, pubrel)).toEqual({ type: 6, packetId: 5, reasonCode: 0, properties: {} });
  });

  it('rejects PUBLISH with QoS 3 [MQTT-3.3.1-4]', () => {
    expectCode(4, packet(0x36, 't', u16(1)), MALFORMED);
  });

  it('rejects PUBLISH with DUP set at QoS 0 [MQTT-3.3.1-2]', () => {
    expectCode(4, packet(0x38, 't'), MALFORMED);
  });

  it('rejects AUTH unless the connection is MQTT 5', () => {
    expectCode(4, Buffer.from([0xf0, 0x00]), MALFORMED);
    expectCode(0, Buffer.from([0xf0, 0x00]), MALFORMED);
    expect(decode(5, Buffer.from([0xf0, 0x00]))).toEqual({ type: 15, reasonCode: 0, properties: {} });
  });
});

describe('UTF-8 strings', () => {
  it('rejects ill-formed UTF-8 in a topic [MQTT-1.5.4-1]', () => {
    expectCode(4, packet(0x30, raw(0x61, 0xc3, 0x28)), MALFORMED);
  });

  it('rejects an encoded surrogate (U+D800) [MQTT-1.5.4-1]', () => {
    expectCode(4, packet(0x30, raw(0xed, 0xa0, 0x80)), MALFORMED);
  });

  it('rejects an overlong encoding [MQTT-1.5.4-1]', () => {
    expectCode(4, packet(0x30, raw(0xc0, 0xaf)), MALFORMED);
  });

  it('rejects U+0000 in a topic [MQTT-1.5.4-2]', () => {
    expectCode(4, packet(0x30, raw(0x61, 0x00, 0x62)), MALFORMED);
  });

  it('rejects U+0000 in a topic filter [MQTT-1.5.4-2]', () => {
    expectCode(4, packet(0x82, u16(1), raw(0x61, 0x00), 0), MALFORMED);
    expectCode(4, packet(0xa2, u16(1), raw(0x00)), MALFORMED);
  });

  it('rejects ill-formed UTF-8 in a topic filter [MQTT-1.5.4-1]', () => {
    expectCode(5, packet(0x82, u16(1), props(), raw(0xff), 0), MALFORMED);
  });

  it('accepts multi-byte characters and keeps them', () => {
    const decoded = decode(4, packet(0x30, 'ä/€/𝄞', 'x')) as Extract<Packet, { type: 3 }>;
    expect(decoded.topic).toBe('ä/€/𝄞');
  });

  it('rejects a string whose length runs past the packet', () => {
    expectCode(4, packet(0x30, u16(10), 0x61), MALFORMED);
  });
});

describe('packet length', () => {
  it('rejects trailing bytes after the last field', () => {
    expectCode(4, packet(0x40, u16(1), 0), MALFORMED);
    expectCode(4, packet(0xe0, 0), MALFORMED);
  });

  it('rejects a packet shorter than its required fields', () => {
    expectCode(4, packet(0x40, 0x01), MALFORMED);
    expectCode(4, packet(0x32, 't'), MALFORMED);
    expectCode(4, packet(0x30), MALFORMED);
  });

  it('rejects PINGREQ and PINGRESP with a body', () => {
    expectCode(4, Buffer.from([0xc0, 0x01, 0x00]), MALFORMED);
    expectCode(4, Buffer.from([0xd0, 0x01, 0x00]), MALFORMED);
  });
});

describe('PUBLISH', () => {
  it.each(['a/+', 'a/#', '#', 'a+b'])('rejects the wildcard topic %s [MQTT-3.3.2-2]', (topic) => {
    expectCode(4, packet(0x30, topic), PROTOCOL);
  });

  it('rejects an empty topic in 3.1.1 [MQTT-4.7.3-1]', () => {
    expectCode(4, packet(0x30, '', 'x'), PROTOCOL);
  });

  it('rejects an empty topic without a Topic Alias in MQTT 5', () => {
    expectCode(5, packet(0x30, '', props(), 'x'), PROTOCOL);
  });

  it('accepts an empty topic with a Topic Alias in MQTT 5, passing alias 0 through', () => {
    const decoded = decode(5, packet(0x30, '', props(0x23, u16(0)), 0x78)) as Extract<Packet, { type: 3 }>;
    expect(decoded.topic).toBe('');
    expect(decoded.properties).toEqual({ topicAlias: 0 });
  });

  it('rejects Packet Identifier 0 at QoS 1 [MQTT-2.2.1-3]', () => {
    expectCode(4, packet(0x32, 't', u16(0)), PROTOCOL);
  });

  it('takes the rest of the packet as payload, empty included', () => {
    expect(decode(4, packet(0x33, 't', u16(9)))).toEqual({
      type: 3,
      topic: 't',
      payload: Buffer.alloc(0),
      qos: 1,
      retain: true,
      dup: false,
      packetId: 9,
      properties: {},
    });
  });
});

describe('PUBACK, PUBREC, PUBREL, PUBCOMP', () => {
  it('reads MQTT 5 Remaining Length 2 as reason 0 without properties', () => {
    expect(decode(5, packet(0x50, u16(3)))).toEqual({ type: 5, packetId: 3, reasonCode: 0, properties: {} });
  });

  it('reads MQTT 5 Remaining Length 3 as a reason code without properties', () => {
    expect(decode(5, packet(0x62, u16(3), 0x92))).toEqual({ type: 6, packetId: 3, reasonCode: 0x92, properties: {} });
  });

  it('reads MQTT 5 Remaining Length 4+ as reason code and properties', () => {
    expect(decode(5, packet(0x70, u16(3), 0x92, props(0x1f, 'gone')))).toEqual({
      type: 7,
      packetId: 3,
      reasonCode: 0x92,
      properties: { reasonString: 'gone' },
    });
  });

  it('requires exactly the packet id in 3.x', () => {
    expectCode(4, packet(0x40, u16(3), 0x10), MALFORMED);
    expectCode(3, packet(0x70, u16(3), 0x00, 0x00), MALFORMED);
  });

  it('rejects Packet Identifier 0', () => {
    expectCode(4, packet(0x40, u16(0)), PROTOCOL);
    expectCode(5, packet(0x62, u16(0)), PROTOCOL);
  });
});

describe('SUBSCRIBE and UNSUBSCRIBE', () => {
  it('rejects SUBSCRIBE with Packet Identifier 0 [MQTT-2.2.1-3]', () => {
    expectCode(4, packet(0x82, u16(0), 'a', 0), PROTOCOL);
  });

  it('rejects SUBSCRIBE without a topic filter [MQTT-3.8.3-3]', () => {
    expectCode(4, packet(0x82, u16(1)), PROTOCOL);
    expectCode(5, packet(0x82, u16(1), props()), PROTOCOL);
  });

  it('rejects a topic filter without its options byte', () => {
    expectCode(4, packet(0x82, u16(1), 'a'), MALFORMED);
  });

  it('rejects reserved bits in a 3.1.1 Requested QoS byte [MQTT-3.8.3-4]', () => {
    expectCode(4, packet(0x82, u16(1), 'a', 0x04), MALFORMED);
    expectCode(3, packet(0x82, u16(1), 'a', 0x80), MALFORMED);
  });

  it('rejects Requested QoS 3 in 3.1.1 as malformed [MQTT-3.8.3-4]', () => {
    expectCode(4, packet(0x82, u16(1), 'a', 0x03), MALFORMED);
  });

  it('rejects reserved bits 6-7 of MQTT 5 Subscription Options [MQTT-3.8.3-5]', () => {
    expectCode(5, packet(0x82, u16(1), props(), 'a', 0x40), MALFORMED);
  });

  it('rejects MQTT 5 Maximum QoS 3 as a protocol error (MQTT 5.0 3.8.3.1)', () => {
    expectCode(5, packet(0x82, u16(1), props(), 'a', 0x03), PROTOCOL);
  });

  it('rejects Retain Handling 3', () => {
    expectCode(5, packet(0x82, u16(1), props(), 'a', 0x30), PROTOCOL);
  });

  it('leaves wildcard placement to the connection, and defaults 3.x options', () => {
    expect(decode(4, packet(0x82, u16(1), 'a/#/b', 1, 'c+', 2))).toEqual({
      type: 8,
      packetId: 1,
      subscriptions: [
        { filter: 'a/#/b', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        { filter: 'c+', qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
      properties: {},
    });
  });

  it('reads MQTT 5 subscription options', () => {
    const decoded = decode(5, packet(0x82, u16(1), props(), 'a', 0b0010_1110)) as Extract<Packet, { type: 8 }>;
    expect(decoded.subscriptions).toEqual([{ filter: 'a', qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2 }]);
  });

  it('rejects UNSUBSCRIBE with Packet Identifier 0 [MQTT-2.2.1-3]', () => {
    expectCode(4, packet(0xa2, u16(0), 'a'), PROTOCOL);
  });

  it('rejects UNSUBSCRIBE without a topic filter [MQTT-3.10.3-2]', () => {
    expectCode(4, packet(0xa2, u16(1)), PROTOCOL);
    expectCode(5, packet(0xa2, u16(1), props()), PROTOCOL);
  });
});

describe('server-to-client packets', () => {
  it('reads a 3.1.1 CONNACK and rejects one of the wrong length', () => {
    expect(decode(4, packet(0x20, 1, 0))).toEqual({ type: 2, sessionPresent: true, reasonCode: 0, properties: {} });
    expectCode(4, packet(0x20, 0, 0, 0), MALFORMED);
    expectCode(4, packet(0x20, 0), MALFORMED);
  });

  it('rejects reserved CONNACK flag bits [MQTT-3.2.2-1]', () => {
    expectCode(4, packet(0x20, 0x02, 0), MALFORMED);
  });

  it('requires the properties of an MQTT 5 CONNACK', () => {
    expectCode(5, packet(0x20, 0, 0), MALFORMED);
    expect(decode(5, packet(0x20, 0, 0x87, props(0x1f, 'no')))).toEqual({ type: 2, sessionPresent: false, reasonCode: 0x87, properties: { reasonString: 'no' } });
  });

  it('reads SUBACK codes and rejects a SUBACK without any', () => {
    expect(decode(4, packet(0x90, u16(2), 0, 0x80))).toEqual({ type: 9, packetId: 2, reasonCodes: [0, 0x80], properties: {} });
    expectCode(4, packet(0x90, u16(2)), MALFORMED);
  });

  it('reads a 3.x UNSUBACK without payload and an MQTT 5 one with codes', () => {
    expect(decode(4, packet(0xb0, u16(2)))).toEqual({ type: 11, packetId: 2, reasonCodes: [], properties: {} });
    expectCode(4, packet(0xb0, u16(2), 0), MALFORMED);
    expect(decode(5, packet(0xb0, u16(2), props(), 0x11))).toEqual({ type: 11, packetId: 2, reasonCodes: [0x11], properties: {} });
  });
});

describe('DISCONNECT and AUTH', () => {
  it('requires an empty 3.x DISCONNECT', () => {
    expect(decode(4, Buffer.from([0xe0, 0x00]))).toEqual({ type: 14, reasonCode: 0, properties: {} });
    expectCode(4, Buffer.from([0xe0, 0x01, 0x00]), MALFORMED);
  });

  it('reads the three MQTT 5 DISCONNECT forms', () => {
    expect(decode(5, packet(0xe0))).toEqual({ type: 14, reasonCode: 0, properties: {} });
    expect(decode(5, packet(0xe0, 0x04))).toEqual({ type: 14, reasonCode: 4, properties: {} });
    expect(decode(5, packet(0xe0, 0x04, props(0x11, 0, 0, 0, 9)))).toEqual({ type: 14, reasonCode: 4, properties: { sessionExpiryInterval: 9 } });
  });

  it('reads MQTT 5 AUTH with reason code and properties', () => {
    expect(decode(5, packet(0xf0, 0x18, props(0x15, 'PLAIN', 0x16, u16(1), 7)))).toEqual({
      type: 15,
      reasonCode: 0x18,
      properties: { authenticationMethod: 'PLAIN', authenticationData: Buffer.from([7]) },
    });
  });
});
