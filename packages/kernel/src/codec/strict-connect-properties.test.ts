import { describe, expect, it } from 'vitest';
import { DecodeError } from './decode-error.js';
import { Decoder } from './decoder.js';
import type { Packet } from './packets.js';
import { MALFORMED, PROTOCOL, bytes, decode, expectCode, packet, props, raw, u16, varint, type Bytes } from './raw-bytes.test-helpers.js';

const UNSUPPORTED = 0x84;

/** An MQTT 5 CONNECT: flags, CONNECT properties, then everything after the Client Identifier. */
const connect5 = (flags: number, connectProps: Buffer, ...tail: Bytes[]): Buffer =>
  packet(0x10, 'MQTT', 5, flags, u16(60), connectProps, 'cid', ...tail);
const connect4 = (flags: number, ...tail: Bytes[]): Buffer => packet(0x10, 'MQTT', 4, flags, u16(60), 'cid', ...tail);

describe('CONNECT', () => {
  it.each([
    ['unknown name', 'MQTX', 4],
    ['MQTT with level 3', 'MQTT', 3],
    ['MQIsdp with level 4', 'MQIsdp', 4],
    ['MQTT with level 6', 'MQTT', 6],
    ['lower-case name', 'mqtt', 4],
    ['bridge bit on the level', 'MQTT', 0x84],
  ])('answers an unsupported protocol (%s) with 0x84', (_name, protocolName, level) => {
    const error = expectCode(0, packet(0x10, protocolName, level, 0x02, u16(60), 'cid'), UNSUPPORTED);
    expect(error.message).toContain('not supported');
  });

  it('treats a protocol name that is not a valid string as malformed, not unsupported', () => {
    expectCode(0, packet(0x10, raw(0x4d, 0xff, 0x54, 0x54), 4, 0x02, u16(60), 'cid'), MALFORMED);
    expectCode(0, packet(0x10, u16(200), 0x4d), MALFORMED);
  });

  it.each([
    [3, 'MQIsdp'],
    [4, 'MQTT'],
    [5, 'MQTT'],
  ] as const)('decodes level %i and sets protocolVersion from it', (level, protocolName) => {
    const decoder = new Decoder({ maxPacketSize: 0 });
    decoder.push(packet(0x10, protocolName, level, 0x02, u16(60), level === 5 ? props() : [], 'cid'));
    expect(decoder.next()).toMatchObject({ type: 1, protocolName, protocolVersion: level, cleanStart: true, keepalive: 60, clientId: 'cid' });
    expect(decoder.protocolVersion).toBe(level);
  });

  it('rejects the reserved connect flag [MQTT-3.1.2-3]', () => {
    expectCode(0, connect4(0x03), MALFORMED);
  });

  it('rejects a Will QoS without the Will Flag [MQTT-3.1.2-11]', () => {
    expectCode(0, connect4(0x08), MALFORMED);
  });

  it('rejects Will Retain without the Will Flag [MQTT-3.1.2-13]', () => {
    expectCode(0, connect4(0x20), MALFORMED);
  });

  it('rejects Will QoS 3 [MQTT-3.1.2-12]', () => {
    expectCode(0, connect4(0x04 | 0x18, 'w', u16(0)), MALFORMED);
  });

  it('rejects a password without a user name in 3.1.1 and 3.1 [MQTT-3.1.2-22]', () => {
    expectCode(0, connect4(0x40, u16(1), 0x70), MALFORMED);
    expectCode(0, packet(0x10, 'MQIsdp', 3, 0x40, u16(60), 'cid', u16(1), 0x70), MALFORMED);
  });

  it('accepts a password without a user name in MQTT 5', () => {
    expect(decode(0, connect5(0x40, props(), u16(1), 0x70))).toMatchObject({ username: undefined, password: Buffer.from([0x70]) });
  });

  it('rejects a Will Topic with a wildcard', () => {
    expectCode(0, connect4(0x04, 'a/#', u16(0)), PROTOCOL);
  });

  it('rejects an empty Will Topic [MQTT-4.7.3-1]', () => {
    expectCode(0, connect4(0x04, '', u16(0)), PROTOCOL);
  });

  it('decodes a will with its MQTT 5 properties', () => {
    const willProps = props(0x18, 0, 0, 0, 5, 0x01, 1, 0x02, 0, 0, 0, 9, 0x03, 'text', 0x08, 'r/t', 0x09, u16(2), 1, 2, 0x26, 'k', 'v', 0x26, 'k', 'w');
    const decoded = decode(0, connect5(0x04 | 0x08 | 0x20, props(), willProps, 'will/t', u16(3), 1, 2, 3));
    expect(decoded).toMatchObject({
      will: {
        topic: 'will/t',
        payload: Buffer.from([1, 2, 3]),
        qos: 1,
        retain: true,
        properties: {
          willDelayInterval: 5,
          payloadFormatIndicator: 1,
          messageExpiryInterval: 9,
          contentType: 'text',
          responseTopic: 'r/t',
          correlationData: Buffer.from([1, 2]),
          userProperties: [
            ['k', 'v'],
            ['k', 'w'],
          ],
        },
      },
    });
  });

  it.each([
    ['Client Identifier', packet(0x10, 'MQTT', 4, 0x02, u16(60), raw(0x61, 0x00))],
    ['User Name', connect4(0x80, raw(0x00))],
    ['Will Topic', connect4(0x04, raw(0x74, 0x00), u16(0))],
  ])('rejects U+0000 in the %s [MQTT-1.5.4-2]', (_field, buf) => {
    expectCode(0, buf, MALFORMED);
  });

  it('rejects ill-formed UTF-8 in the User Name [MQTT-1.5.4-1]', () => {
    expectCode(0, connect4(0x80, raw(0xe2, 0x82)), MALFORMED);
  });

  it('rejects a password that runs past the packet', () => {
    expectCode(0, connect4(0xc0, 'u', u16(5), 1, 2), MALFORMED);
  });

  it('rejects a byte after the last field', () => {
    expectCode(0, connect4(0x02, 0x00), MALFORMED);
  });

  it('leaves protocolVersion at 0 when the CONNECT fails', () => {
    const decoder = new Decoder({ maxPacketSize: 0 });
    decoder.push(connect4(0x01));
    expect(() => decoder.next()).toThrow(DecodeError);
    expect(decoder.protocolVersion).toBe(0);
  });
});

/** A server-to-client MQTT 5 PUBLISH carrying these properties. */
const publish5 = (...propertyBytes: Bytes[]): Buffer => packet(0x30, 't', props(...propertyBytes), 'x');
const publishProperties = (buf: Buffer): unknown => (decode(5, buf) as Extract<Packet, { type: 3 }>).properties;

describe('MQTT 5 properties', () => {
  it('rejects a Property Length that runs past the packet', () => {
    expectCode(5, packet(0x30, 't', 10, 0x01, 0), MALFORMED);
  });

  it('rejects a property value that runs past the Property Length', () => {
    // Property Length 3 covers 0x03 and the string length, not the string bytes that follow.
    expectCode(5, packet(0x30, 't', 3, 0x03, u16(2), 0x61, 0x62), MALFORMED);
  });

  it.each(['00', '04', '2b', '7f', '80'])('rejects the unknown property identifier 0x%s', (hex) => {
    expectCode(5, publish5(Number.parseInt(hex, 16), 0), MALFORMED);
  });

  it.each([
    ['Topic Alias in CONNECT', connect5(0x02, props(0x23, u16(1)))],
    ['Assigned Client Identifier in CONNECT', connect5(0x02, props(0x12, 'x'))],
    ['Reason String in CONNECT', connect5(0x02, props(0x1f, 'x'))],
    ['Session Expiry Interval in will properties', connect5(0x04, props(), props(0x11, 0, 0, 0, 1), 'w', u16(0))],
    ['Will Delay Interval in PUBLISH', publish5(0x18, 0, 0, 0, 1)],
    ['Reason String in PUBLISH', publish5(0x1f, 'x')],
    ['Subscription Identifier in CONNACK', packet(0x20, 0, 0, props(0x0b, 1))],
    ['Content Type in PUBACK', packet(0x40, u16(1), 0, props(0x03, 'x'))],
    ['Topic Alias in SUBSCRIBE', packet(0x82, u16(1), props(0x23, u16(1)), 'a', 0)],
  ])('rejects a property the packet may not carry: %s (MQTT 5.0 table 2-4)', (_name, buf) => {
    expectCode(buf[0] === 0x10 ? 0 : 5, buf, MALFORMED);
  });

  it.each([
    ['Content Type in PUBLISH', publish5(0x03, 'a', 0x03, 'b')],
    ['Message Expiry Interval in PUBLISH', publish5(0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2)],
    ['Session Expiry Interval in CONNECT', connect5(0x02, props(0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 1))],
    ['Reason String in PUBACK', packet(0x40, u16(1), 0, props(0x1f, 'a', 0x1f, 'b'))],
    ['Subscription Identifier in SUBSCRIBE', packet(0x82, u16(1), props(0x0b, 1, 0x0b, 2), 'a', 0)],
  ])('rejects a single-valued property given twice: %s', (_name, buf) => {
    expectCode(buf[0] === 0x10 ? 0 : 5, buf, PROTOCOL);
  });

  it('keeps repeated User Properties in order, duplicates included', () => {
    expect(publishProperties(publish5(0x26, 'b', '1', 0x26, 'a', '2', 0x26, 'b', '1'))).toEqual({
      userProperties: [
        ['b', '1'],
        ['a', '2'],
        ['b', '1'],
      ],
    });
  });

  it('accepts several Subscription Identifiers in a server-to-client PUBLISH', () => {
    expect(publishProperties(publish5(0x0b, 1, 0x0b, 0xff, 0xff, 0xff, 0x7f))).toEqual({ subscriptionIdentifiers: [1, 268_435_455] });
  });

  it.each([
    ['several', [0x0b, 1, 0x0b, 2]],
    ['one', [0x0b, 1]],
  ])('rejects %s Subscription Identifier(s) in a client-to-server PUBLISH [MQTT-3.3.4-6]', (_n, propertyBytes) => {
    const decoder = new Decoder({ maxPacketSize: 0 });
    decoder.push(connect5(0x02, props()));
    decoder.next();
    decoder.push(publish5(...propertyBytes));
    expect(() => decoder.next()).toThrow(expect.objectContaining({ reasonCode: PROTOCOL }));
  });

  it('rejects Subscription Identifier 0', () => {
    expectCode(5, publish5(0x0b, 0), PROTOCOL);
    expectCode(5, packet(0x82, u16(1), props(0x0b, 0), 'a', 0), PROTOCOL);
  });

  it('rejects a Subscription Identifier longer than 4 bytes', () => {
    expectCode(5, publish5(0x0b, 0x80, 0x80, 0x80, 0x80, 0x01), MALFORMED);
  });

  it.each([
    ['Payload Format Indicator', (v: number) => publish5(0x01, v)],
    ['Request Problem Information', (v: number) => connect5(0x02, props(0x17, v))],
    ['Request Response Information', (v: number) => connect5(0x02, props(0x19, v))],
    ['Maximum QoS', (v: number) => packet(0x20, 0, 0, props(0x24, v))],
    ['Retain Available', (v: number) => packet(0x20, 0, 0, props(0x25, v))],
    ['Wildcard Subscription Available', (v: number) => packet(0x20, 0, 0, props(0x28, v))],
    ['Subscription Identifiers Available', (v: number) => packet(0x20, 0, 0, props(0x29, v))],
    ['Shared Subscription Available', (v: number) => packet(0x20, 0, 0, props(0x2a, v))],
  ])('accepts %s 0 and 1 and rejects 2', (_name, build) => {
    const version = build(0)[0] === 0x10 ? 0 : 5;
    expect(decode(version, build(0))).not.toBeNull();
    expect(decode(version, build(1))).not.toBeNull();
    expectCode(version, build(2), PROTOCOL);
  });

  it('rejects Receive Maximum 0', () => {
    expectCode(0, connect5(0x02, props(0x21, u16(0))), PROTOCOL);
    expectCode(5, packet(0x20, 0, 0, props(0x21, u16(0))), PROTOCOL);
  });

  it('rejects Maximum Packet Size 0', () => {
    expectCode(0, connect5(0x02, props(0x27, 0, 0, 0, 0)), PROTOCOL);
  });

  it('passes Topic Alias through as it is, 0 included', () => {
    expect(publishProperties(publish5(0x23, u16(0)))).toEqual({ topicAlias: 0 });
    expect(publishProperties(publish5(0x23, u16(65535)))).toEqual({ topicAlias: 65535 });
  });

  it('rejects a Response Topic with a wildcard [MQTT-3.3.2-14]', () => {
    expectCode(5, publish5(0x08, 'reply/+'), PROTOCOL);
  });

  it('rejects ill-formed UTF-8 and U+0000 in string properties and both halves of a User Property', () => {
    expectCode(5, publish5(0x03, raw(0xc3)), MALFORMED);
    expectCode(5, publish5(0x26, raw(0x00), 'v'), MALFORMED);
    expectCode(5, publish5(0x26, 'k', raw(0xed, 0xbf, 0xbf)), MALFORMED);
  });

  it('leaves absent properties undefined, without empty arrays', () => {
    const properties = publishProperties(publish5(0x03, 'json')) as Record<string, unknown>;
    expect(properties).toEqual({ contentType: 'json' });
    expect(Object.keys(properties)).toEqual(['contentType']);
  });

  it('copies Correlation Data and reads it to its length', () => {
    expect(publishProperties(publish5(0x09, u16(3), 1, 2, 3))).toEqual({ correlationData: Buffer.from([1, 2, 3]) });
    expectCode(5, publish5(0x09, u16(9), 1), MALFORMED);
  });
});
