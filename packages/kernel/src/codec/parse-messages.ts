import { malformed, protocolError } from './decode-error.js';
import { PacketType } from './packets.js';
import type {
  AckPacket,
  Properties,
  PublishPacket,
  QoS,
  SubackPacket,
  SubscribePacket,
  SubscriptionRequest,
  UnsubackPacket,
  UnsubscribePacket,
} from './packets.js';
import { hasWildcard, readProperties } from './properties.js';
import type { Reader } from './reader.js';

/**
 * PUBLISH. The fixed-header flags were checked by the decoder (QoS 3, DUP with QoS 0). `fromClient`
 * says which way it travels: a server's PUBLISH carries one Subscription Identifier per matching
 * subscription [MQTT-3.3.4-4], a client's none at all [MQTT-3.3.4-6].
 */
export function parsePublish(reader: Reader, flags: number, version: number, fromClient: boolean): PublishPacket {
  const qos = ((flags >> 1) & 0x03) as QoS;
  const topic = reader.utf8('Topic Name');
  if (hasWildcard(topic)) throw protocolError('PUBLISH Topic Name contains a wildcard [MQTT-3.3.2-2]');
  let packetId: number | undefined;
  if (qos > 0) {
    packetId = reader.u16('Packet Identifier');
    if (packetId === 0) throw protocolError(`PUBLISH with QoS ${qos} has Packet Identifier 0 [MQTT-2.2.1-3]`);
  }
  const properties: Properties = version === 5 ? readProperties(reader, PacketType.PUBLISH, !fromClient) : {};
  if (fromClient && properties.subscriptionIdentifiers !== undefined) {
    throw protocolError('PUBLISH from a client carries a Subscription Identifier [MQTT-3.3.4-6]');
  }
  // An empty Topic Name stands for the Topic Alias, which the connection resolves; without an alias
  // (or before MQTT 5) a topic must be at least one character long.
  if (topic.length === 0 && (version !== 5 || properties.topicAlias === undefined)) {
    throw protocolError('PUBLISH Topic Name is empty and there is no Topic Alias [MQTT-4.7.3-1]');
  }
  const payload = reader.rest();
  return {
    type: PacketType.PUBLISH,
    topic,
    payload,
    qos,
    retain: (flags & 0x01) !== 0,
    dup: (flags & 0x08) !== 0,
    packetId,
    properties,
  };
}

/**
 * PUBACK, PUBREC, PUBREL, PUBCOMP. MQTT 5: Remaining Length 2 means reason 0 without properties, 3 a
 * reason code without properties, 4 or more a reason code and properties. 3.x: exactly the packet id.
 */
export function parseAck(reader: Reader, type: AckPacket['type'], version: number): AckPacket {
  const packetId = reader.u16('Packet Identifier');
  if (packetId === 0) throw protocolError(`${reader.packet} has Packet Identifier 0`);
  let reasonCode = 0;
  let properties: Properties = {};
  if (version === 5 && reader.remaining > 0) {
    reasonCode = reader.u8('reason code');
    if (reader.remaining > 0) properties = readProperties(reader, type, false);
  }
  reader.expectEnd();
  return { type, packetId, reasonCode, properties };
}

export function parseSubscribe(reader: Reader, version: number): SubscribePacket {
  const packetId = reader.u16('Packet Identifier');
  if (packetId === 0) throw protocolError('SUBSCRIBE has Packet Identifier 0 [MQTT-2.2.1-3]');
  const properties: Properties = version === 5 ? readProperties(reader, PacketType.SUBSCRIBE, false) : {};
  if (reader.remaining === 0) throw protocolError('SUBSCRIBE has no Topic Filter [MQTT-3.8.3-3]');
  const subscriptions: SubscriptionRequest[] = [];
  // Wildcard placement is not checked here: the connection answers each bad filter with its own
  // reason code instead of dropping the whole connection.
  while (reader.remaining > 0) {
    const filter = reader.utf8('Topic Filter');
    const options = reader.u8('Subscription Options');
    subscriptions.push(version === 5 ? subscriptionOptions5(filter, options) : subscriptionOptions3(filter, options));
  }
  return { type: PacketType.SUBSCRIBE, packetId, subscriptions, properties };
}

function subscriptionOptions3(filter: string, options: number): SubscriptionRequest {
  if ((options & 0xfc) !== 0) throw malformed('SUBSCRIBE Requested QoS byte has reserved bits 7-2 set [MQTT-3.8.3-4]');
  if (options === 3) throw malformed('SUBSCRIBE Requested QoS is 3 [MQTT-3.8.3-4]');
  return { filter, qos: options as QoS, noLocal: false, retainAsPublished: false, retainHandling: 0 };
}

function subscriptionOptions5(filter: string, options: number): SubscriptionRequest {
  if ((options & 0xc0) !== 0) throw malformed('SUBSCRIBE Subscription Options reserved bits 7-6 are set [MQTT-3.8.3-5]');
  const qos = options & 0x03;
  // MQTT 5.0 3.8.3.1 makes both of these a Protocol Error rather than a Malformed Packet.
  if (qos === 3) throw protocolError('SUBSCRIBE Maximum QoS is 3');
  const retainHandling = (options >> 4) & 0x03;
  if (retainHandling === 3) throw protocolError('SUBSCRIBE Retain Handling is 3');
  return {
    filter,
    qos: qos as QoS,
    noLocal: (options & 0x04) !== 0,
    retainAsPublished: (options & 0x08) !== 0,
    retainHandling: retainHandling as 0 | 1 | 2,
  };
}

export function parseSuback(reader: Reader, version: number): SubackPacket {
  const packetId = reader.u16('Packet Identifier');
  if (packetId === 0) throw protocolError('SUBACK has Packet Identifier 0');
  const properties: Properties = version === 5 ? readProperties(reader, PacketType.SUBACK, false) : {};
  // One code per requested filter [MQTT-3.9.3-1], so at least one.
  if (reader.remaining === 0) throw malformed('SUBACK has no reason codes');
  const reasonCodes = readCodes(reader);
  return { type: PacketType.SUBACK, packetId, reasonCodes, properties };
}

export function parseUnsubscribe(reader: Reader, version: number): UnsubscribePacket {
  const packetId = reader.u16('Packet Identifier');
  if (packetId === 0) throw protocolError('UNSUBSCRIBE has Packet Identifier 0 [MQTT-2.2.1-3]');
  const properties: Properties = version === 5 ? readProperties(reader, PacketType.UNSUBSCRIBE, false) : {};
  if (reader.remaining === 0) throw protocolError('UNSUBSCRIBE has no Topic Filter [MQTT-3.10.3-2]');
  const filters: string[] = [];
  while (reader.remaining > 0) filters.push(reader.utf8('Topic Filter'));
  return { type: PacketType.UNSUBSCRIBE, packetId, filters, properties };
}

/** 3.x UNSUBACK is only the packet id; MQTT 5 adds properties and one reason code per filter. */
export function parseUnsuback(reader: Reader, version: number): UnsubackPacket {
  const packetId = reader.u16('Packet Identifier');
  if (packetId === 0) throw protocolError('UNSUBACK has Packet Identifier 0');
  if (version !== 5) {
    reader.expectEnd();
    return { type: PacketType.UNSUBACK, packetId, reasonCodes: [], properties: {} };
  }
  const properties = readProperties(reader, PacketType.UNSUBACK, false);
  if (reader.remaining === 0) throw malformed('UNSUBACK has no reason codes');
  const reasonCodes = readCodes(reader);
  return { type: PacketType.UNSUBACK, packetId, reasonCodes, properties };
}

function readCodes(reader: Reader): number[] {
  const codes: number[] = [];
  while (reader.remaining > 0) codes.push(reader.u8('reason code'));
  return codes;
}
