import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { Decoder } from './decoder.js';
import { encode } from './encoder.js';
import type { Packet, Properties, ProtocolVersion, UserProperty } from './packets.js';

// ------------------------------------------------------------------------------------------------
// Fixtures: every packet type, in the shape our decoder gives for that version (so 3.x fixtures carry
// no properties, no ack reason codes and default subscription options).
// ------------------------------------------------------------------------------------------------

const USER_PROPERTIES: UserProperty[] = [
  ['region', 'eu'],
  ['trace', '1'],
  ['region', 'us'],
  ['ключ', 'значение ✓'],
  ['trace', '2'],
];

function fixtures(version: ProtocolVersion): { name: string; packet: Packet }[] {
  const v5 = version === 5;
  const props = (p: Properties): Properties => (v5 ? p : {});
  const reason = (code: number): number => (v5 ? code : 0);
  const protocolName = version === 3 ? 'MQIsdp' : 'MQTT';
  return [
    {
      name: 'CONNECT minimal',
      packet: { type: 1, protocolName, protocolVersion: version, cleanStart: true, keepalive: 60, clientId: 'c1', will: null, username: undefined, password: undefined, properties: {} },
    },
    {
      name: 'CONNECT with will, credentials and properties',
      packet: {
        type: 1,
        protocolName,
        protocolVersion: version,
        cleanStart: false,
        keepalive: 65535,
        clientId: 'client-ü',
        will: {
          topic: 'last/will',
          payload: Buffer.from('gone'),
          qos: 1,
          retain: true,
          properties: props({
            willDelayInterval: 30,
            payloadFormatIndicator: 1,
            messageExpiryInterval: 3600,
            contentType: 'text/plain',
            responseTopic: 'reply/here',
            correlationData: Buffer.from([1, 2, 3]),
            userProperties: USER_PROPERTIES,
          }),
        },
        username: 'user',
        password: Buffer.from([0, 255, 7]),
        properties: props({
          sessionExpiryInterval: 7200,
          receiveMaximum: 20,
          maximumPacketSize: 1 << 20,
          topicAliasMaximum: 10,
          requestResponseInformation: 1,
          requestProblemInformation: 0,
          userProperties: USER_PROPERTIES,
          authenticationMethod: 'SCRAM-SHA-1',
          authenticationData: Buffer.from('client-first'),
        }),
      },
    },
    { name: 'CONNACK', packet: { type: 2, sessionPresent: version !== 3, reasonCode: 0, properties: {} } },
    { name: 'CONNACK refused', packet: { type: 2, sessionPresent: false, reasonCode: v5 ? 0x87 : 5, properties: {} } },
    {
      name: 'CONNACK with properties',
      packet: {
        type: 2,
        sessionPresent: false,
        reasonCode: 0,
        properties: props({
          sessionExpiryInterval: 0,
          receiveMaximum: 100,
          maximumQoS: 1,
          retainAvailable: 0,
          maximumPacketSize: 65536,
          assignedClientIdentifier: 'auto-1',
          topicAliasMaximum: 5,
          reasonString: 'welcome',
          userProperties: USER_PROPERTIES,
          wildcardSubscriptionAvailable: 1,
          subscriptionIdentifiersAvailable: 1,
          sharedSubscriptionAvailable: 0,
          serverKeepAlive: 30,
          responseInformation: 'resp/',
          serverReference: 'other:1883',
          authenticationMethod: 'SCRAM-SHA-1',
          authenticationData: Buffer.from('server-final'),
        }),
      },
    },
    { name: 'PUBLISH QoS 0', packet: { type: 3, topic: 'a/b', payload: Buffer.from('hello'), qos: 0, retain: false, dup: false, packetId: undefined, properties: {} } },
    { name: 'PUBLISH QoS 1 dup retain, empty payload', packet: { type: 3, topic: 'a/ü/c', payload: Buffer.alloc(0), qos: 1, retain: true, dup: true, packetId: 1, properties: {} } },
    {
      name: 'PUBLISH QoS 2 with properties',
      packet: {
        type: 3,
        topic: 'sensors/t1',
        payload: Buffer.alloc(300, 0xab),
        qos: 2,
        retain: false,
        dup: false,
        packetId: 65535,
        properties: props({
          payloadFormatIndicator: 0,
          messageExpiryInterval: 60,
          topicAlias: 3,
          responseTopic: 'reply/t1',
          correlationData: Buffer.from('corr'),
          userProperties: USER_PROPERTIES,
          subscriptionIdentifiers: [1, 268_435_455, 300],
          contentType: 'application/json',
        }),
      },
    },
    { name: 'PUBACK', packet: { type: 4, packetId: 10, reasonCode: 0, properties: {} } },
    { name: 'PUBACK with reason code', packet: { type: 4, packetId: 10, reasonCode: reason(0x10), properties: {} } },
    {
      name: 'PUBACK with reason code and properties',
      packet: { type: 4, packetId: 11, reasonCode: reason(0x87), properties: props({ reasonString: 'no', userProperties: USER_PROPERTIES }) },
    },
    { name: 'PUBREC', packet: { type: 5, packetId: 12, reasonCode: reason(0x10), properties: props({ reasonString: 'nobody' }) } },
    { name: 'PUBREL', packet: { type: 6, packetId: 13, reasonCode: 0, properties: {} } },
    { name: 'PUBREL not found', packet: { type: 6, packetId: 13, reasonCode: reason(0x92), properties: props({ userProperties: [['k', 'v']] }) } },
    { name: 'PUBCOMP', packet: { type: 7, packetId: 14, reasonCode: 0, properties: props({ reasonString: 'done' }) } },
    {
      name: 'SUBSCRIBE',
      packet: {
        type: 8,
        packetId: 15,
        subscriptions: [
          { filter: 'a/+/c', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
          { filter: 'a/#', qos: 1, noLocal: v5, retainAsPublished: false, retainHandling: v5 ? 1 : 0 },
          { filter: '$share/g/x', qos: 2, noLocal: false, retainAsPublished: v5, retainHandling: v5 ? 2 : 0 },
        ],
        properties: props({ subscriptionIdentifiers: [42], userProperties: USER_PROPERTIES }),
      },
    },
    { name: 'SUBACK', packet: { type: 9, packetId: 15, reasonCodes: [0, 1, 2, 0x80], properties: props({ reasonString: 'partial' }) } },
    {
      name: 'UNSUBSCRIBE',
      packet: { type: 10, packetId: 16, filters: ['a/+/c', 'ü/#'], properties: props({ userProperties: USER_PROPERTIES }) },
    },
    { name: 'UNSUBACK', packet: { type: 11, packetId: 16, reasonCodes: v5 ? [0, 0x11] : [], properties: props({ reasonString: 'ok' }) } },
    { name: 'PINGREQ', packet: { type: 12 } },
    { name: 'PINGRESP', packet: { type: 13 } },
    { name: 'DISCONNECT', packet: { type: 14, reasonCode: 0, properties: {} } },
    { name: 'DISCONNECT with reason code', packet: { type: 14, reasonCode: reason(0x04), properties: {} } },
    {
      name: 'DISCONNECT with properties',
      packet: { type: 14, reasonCode: reason(0x8e), properties: props({ sessionExpiryInterval: 10, reasonString: 'bye', serverReference: 'b:1883', userProperties: USER_PROPERTIES }) },
    },
    ...(v5
      ? [
          {
            name: 'PUBLISH with empty topic and Topic Alias',
            packet: { type: 3, topic: '', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, packetId: undefined, properties: { topicAlias: 1 } } as Packet,
          },
          { name: 'AUTH minimal', packet: { type: 15, reasonCode: 0, properties: {} } as Packet },
          {
            name: 'AUTH with properties',
            packet: {
              type: 15,
              reasonCode: 0x18,
              properties: { authenticationMethod: 'SCRAM-SHA-1', authenticationData: Buffer.from('abc'), reasonString: 'go on', userProperties: [['x', 'y']] },
            } as Packet,
          },
        ]
      : []),
  ];
}

/** A decoder in the right state to read `packet`: server-side for client packets, version preset otherwise. */
function decoderFor(packet: Packet, version: ProtocolVersion): Decoder {
  const decoder = new Decoder({ maxPacketSize: 0 });
  if (packet.type !== 1) decoder.protocolVersion = version;
  return decoder;
}

function decodeOne(buf: Buffer, packet: Packet, version: ProtocolVersion): Packet | null {
  const decoder = decoderFor(packet, version);
  decoder.push(buf);
  const out = decoder.next();
  expect(decoder.next()).toBeNull();
  expect(decoder.buffered).toBe(0);
  return out;
}

// ------------------------------------------------------------------------------------------------
// mqtt-packet as an oracle: convert to and from its shapes, allowing for its quirks (user properties
// grouped by name, byte properties as booleans, one Subscription Identifier as a number).
// ------------------------------------------------------------------------------------------------

type Loose = Record<string, unknown>;
const BOOLEAN_PROPERTIES = new Set([
  'payloadFormatIndicator',
  'requestProblemInformation',
  'requestResponseInformation',
  'retainAvailable',
  'wildcardSubscriptionAvailable',
  'subscriptionIdentifiersAvailable',
  'sharedSubscriptionAvailable',
]);

function propertiesToMqtt(properties: Properties): Loose | undefined {
  const out: Loose = {};
  for (const [key, value] of Object.entries(properties)) {
    if (value === undefined) continue;
    if (BOOLEAN_PROPERTIES.has(key)) out[key] = value === 1;
    else if (key === 'subscriptionIdentifiers') {
      const ids = value as number[];
      out.subscriptionIdentifier = ids.length === 1 ? ids[0] : ids;
    } else if (key === 'userProperties') {
      const grouped: Record<string, string | string[]> = {};
      for (const [name, v] of value as UserProperty[]) {
        const previous = grouped[name];
        grouped[name] = previous === undefined ? v : ([] as string[]).concat(previous, v);
      }
      out.userProperties = grouped;
    } else out[key] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function propertiesFromMqtt(properties: Loose | undefined): Properties {
  const out: Loose = {};
  for (const [key, value] of Object.entries(properties ?? {})) {
    if (BOOLEAN_PROPERTIES.has(key)) out[key] = value ? 1 : 0;
    else if (key === 'subscriptionIdentifier') out.subscriptionIdentifiers = Array.isArray(value) ? value : [value];
    else if (key === 'userProperties') {
      const pairs: UserProperty[] = [];
      for (const [name, v] of Object.entries(value as Record<string, string | string[]>)) {
        for (const one of Array.isArray(v) ? v : [v]) pairs.push([name, one]);
      }
      out.userProperties = pairs;
    } else out[key] = value;
  }
  return out as Properties;
}

/** What a packet looks like after mqtt-packet has handled it: user properties grouped by first name. */
function groupedUserProperties(packet: Packet): Packet {
  const regroup = (p: Properties): Properties => {
    if (p.userProperties === undefined) return p;
    const order: string[] = [];
    for (const [name] of p.userProperties) if (!order.includes(name)) order.push(name);
    const pairs = order.flatMap((name) => p.userProperties!.filter(([n]) => n === name));
    return { ...p, userProperties: pairs };
  };
  const copy = { ...packet } as Loose;
  if ('properties' in packet) copy.properties = regroup(packet.properties);
  if (packet.type === 1 && packet.will !== null) copy.will = { ...packet.will, properties: regroup(packet.will.properties) };
  return copy as unknown as Packet;
}

const ACK_NAMES = { 4: 'puback', 5: 'pubrec', 6: 'pubrel', 7: 'pubcomp' } as const;

function toMqtt(packet: Packet, version: ProtocolVersion): mqttPacket.Packet {
  const loose: Loose = (() => {
    switch (packet.type) {
      case 1:
        return {
          cmd: 'connect',
          protocolId: packet.protocolName,
          protocolVersion: packet.protocolVersion,
          clean: packet.cleanStart,
          keepalive: packet.keepalive,
          clientId: packet.clientId,
          username: packet.username,
          password: packet.password,
          properties: propertiesToMqtt(packet.properties),
          will:
            packet.will === null
              ? undefined
              : { ...packet.will, properties: propertiesToMqtt(packet.will.properties) },
        };
      case 2:
        return { cmd: 'connack', sessionPresent: packet.sessionPresent, [version === 5 ? 'reasonCode' : 'returnCode']: packet.reasonCode, properties: propertiesToMqtt(packet.properties) };
      case 3:
        return { cmd: 'publish', topic: packet.topic, payload: packet.payload, qos: packet.qos, retain: packet.retain, dup: packet.dup, messageId: packet.packetId, properties: propertiesToMqtt(packet.properties) };
      case 4:
      case 5:
      case 6:
      case 7:
        return { cmd: ACK_NAMES[packet.type], messageId: packet.packetId, reasonCode: packet.reasonCode, properties: propertiesToMqtt(packet.properties) };
      case 8:
        return {
          cmd: 'subscribe',
          messageId: packet.packetId,
          subscriptions: packet.subscriptions.map((s) => ({ topic: s.filter, qos: s.qos, nl: s.noLocal, rap: s.retainAsPublished, rh: s.retainHandling })),
          properties: propertiesToMqtt(packet.properties),
        };
      case 9:
        return { cmd: 'suback', messageId: packet.packetId, granted: packet.reasonCodes, properties: propertiesToMqtt(packet.properties) };
      case 10:
        return { cmd: 'unsubscribe', messageId: packet.packetId, unsubscriptions: packet.filters, properties: propertiesToMqtt(packet.properties) };
      case 11:
        return { cmd: 'unsuback', messageId: packet.packetId, granted: packet.reasonCodes, properties: propertiesToMqtt(packet.properties) };
      case 12:
        return { cmd: 'pingreq' };
      case 13:
        return { cmd: 'pingresp' };
      case 14:
        return { cmd: 'disconnect', reasonCode: packet.reasonCode, properties: propertiesToMqtt(packet.properties) };
      case 15:
        return { cmd: 'auth', reasonCode: packet.reasonCode, properties: propertiesToMqtt(packet.properties) };
    }
  })();
  return loose as unknown as mqttPacket.Packet;
}

function fromMqtt(m: Loose, version: ProtocolVersion): Packet {
  const properties = propertiesFromMqtt(m.properties as Loose | undefined);
  const reasonCode = (m.reasonCode as number | undefined) ?? 0;
  switch (m.cmd) {
    case 'connect': {
      const will = m.will as Loose | undefined;
      return {
        type: 1,
        protocolName: m.protocolId as string,
        protocolVersion: m.protocolVersion as ProtocolVersion,
        cleanStart: m.clean as boolean,
        keepalive: m.keepalive as number,
        clientId: m.clientId as string,
        will: will === undefined ? null : { topic: will.topic as string, payload: will.payload as Buffer, qos: will.qos as 0, retain: will.retain as boolean, properties: propertiesFromMqtt(will.properties as Loose) },
        username: m.username as string | undefined,
        password: m.password as Buffer | undefined,
        properties,
      };
    }
    case 'connack':
      return { type: 2, sessionPresent: m.sessionPresent as boolean, reasonCode: version === 5 ? reasonCode : (m.returnCode as number), properties };
    case 'publish': {
      const qos = m.qos as 0 | 1 | 2;
      return { type: 3, topic: m.topic as string, payload: m.payload as Buffer, qos, retain: m.retain as boolean, dup: m.dup as boolean, packetId: qos > 0 ? (m.messageId as number) : undefined, properties };
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return { type: ({ puback: 4, pubrec: 5, pubrel: 6, pubcomp: 7 } as const)[m.cmd], packetId: m.messageId as number, reasonCode, properties };
    case 'subscribe':
      return {
        type: 8,
        packetId: m.messageId as number,
        subscriptions: (m.subscriptions as Loose[]).map((s) => ({
          filter: s.topic as string,
          qos: s.qos as 0,
          noLocal: (s.nl as boolean | undefined) ?? false,
          retainAsPublished: (s.rap as boolean | undefined) ?? false,
          retainHandling: (s.rh as 0 | undefined) ?? 0,
        })),
        properties,
      };
    case 'suback':
      return { type: 9, packetId: m.messageId as number, reasonCodes: m.granted as number[], properties };
    case 'unsubscribe':
      return { type: 10, packetId: m.messageId as number, filters: m.unsubscriptions as string[], properties };
    case 'unsuback':
      return { type: 11, packetId: m.messageId as number, reasonCodes: (m.granted as number[] | undefined) ?? [], properties };
    case 'pingreq':
      return { type: 12 };
    case 'pingresp':
      return { type: 13 };
    case 'disconnect':
      return { type: 14, reasonCode, properties };
    default:
      return { type: 15, reasonCode, properties };
  }
}

function parseWithMqttPacket(buf: Buffer, version: ProtocolVersion): Loose {
  const parser = mqttPacket.parser({ protocolVersion: version });
  const packets: Loose[] = [];
  const errors: unknown[] = [];
  parser.on('packet', (p) => packets.push(p as unknown as Loose));
  parser.on('error', (e) => errors.push(e));
  parser.parse(buf);
  if (errors.length > 0) throw errors[0];
  expect(packets).toHaveLength(1);
  return packets[0]!;
}

// ------------------------------------------------------------------------------------------------

describe.each([3, 4, 5] as const)('codec round trips, protocol level %i', (version) => {
  const cases = fixtures(version);

  it.each(cases)('ours → ours: $name', ({ packet }) => {
    const buf = encode(packet, version);
    expect(decodeOne(buf, packet, version)).toEqual(packet);
  });

  it.each(cases)('encoded $name re-encodes to the same bytes', ({ packet }) => {
    const buf = encode(packet, version);
    const again = encode(decodeOne(buf, packet, version)!, version);
    expect(again.equals(buf)).toBe(true);
  });

  it.each(cases)('mqtt-packet generate → our decoder: $name', ({ packet }) => {
    const buf = mqttPacket.generate(toMqtt(packet, version), { protocolVersion: version });
    expect(decodeOne(buf, packet, version)).toEqual(groupedUserProperties(packet));
  });

  // mqtt-packet 9 cannot parse an AUTH without a reason code (Remaining Length 0), which the standard allows.
  it.each(cases.filter((c) => c.name !== 'AUTH minimal'))('our encoder → mqtt-packet parser: $name', ({ packet }) => {
    const buf = encode(packet, version);
    expect(fromMqtt(parseWithMqttPacket(buf, version), version)).toEqual(groupedUserProperties(packet));
  });
});
