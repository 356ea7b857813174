import { PacketType } from './packets.js';
import type {
  AckPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  AuthPacket,
  Packet,
  Properties,
  ProtocolVersion,
  PublishPacket,
  SubackPacket,
  SubscribePacket,
  UnsubackPacket,
  UnsubscribePacket,
} from './packets.js';
import { binaryLength, propertiesLength, stringLength, WILL_PROPERTIES, writeBinary, writeProperties, writeString } from './properties.js';
import type { PropertyContext } from './properties.js';
import { variableHeaderLength, writePublishHeader } from './publish-encoder.js';
import { varintLength, writeVarint } from './varint.js';

/**
 * Encodes one packet into one Buffer of exactly its size: a first pass adds up the lengths, a second
 * writes into a single allocation. For 3.1/3.1.1 the properties and MQTT 5-only fields (reason codes of
 * acks and DISCONNECT, UNSUBACK codes) are left out; CONNACK and SUBACK codes are written as given.
 * Properties a packet type may not carry (MQTT 5.0 table 2-4) are left out too. Throws RangeError for
 * values the wire format cannot hold (a string over 65535 bytes, a packet over 256 MB) and for AUTH
 * before MQTT 5. A CONNECT carries `packet.protocolName` as given and `version` as its level, so a test
 * client can also write combinations a broker must refuse.
 */
export function encode(packet: Packet, version: ProtocolVersion): Buffer {
  switch (packet.type) {
    case PacketType.CONNECT:
      return encodeConnect(packet, version);
    case PacketType.CONNACK:
      return encodeConnack(packet, version);
    case PacketType.PUBLISH:
      return encodePublish(packet, version);
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP:
      return encodeAck(packet, version);
    case PacketType.SUBSCRIBE:
      return encodeSubscribe(packet, version);
    case PacketType.SUBACK:
      return encodeSuback(packet, version);
    case PacketType.UNSUBSCRIBE:
      return encodeUnsubscribe(packet, version);
    case PacketType.UNSUBACK:
      return encodeUnsuback(packet, version);
    case PacketType.PINGREQ:
    case PacketType.PINGRESP:
      return Buffer.from([packet.type << 4, 0]);
    case PacketType.DISCONNECT:
      return encodeReasonOnly(packet, version);
    case PacketType.AUTH:
      if (version !== 5) throw new RangeError('AUTH exists only in MQTT 5');
      return encodeReasonOnly(packet, version);
  }
}

/** One exact-size Buffer with the fixed header written; the variable header starts at length - remaining. */
function allocate(firstByte: number, remaining: number): Buffer {
  const buf = Buffer.allocUnsafe(1 + varintLength(remaining) + remaining);
  buf[0] = firstByte;
  writeVarint(buf, 1, remaining);
  return buf;
}

function bodyStart(buf: Buffer, remaining: number): number {
  return buf.length - remaining;
}

function propertiesBlock(propsLength: number): number {
  return varintLength(propsLength) + propsLength;
}

function encodeConnect(packet: ConnectPacket, version: ProtocolVersion): Buffer {
  const v5 = version === 5;
  const will = packet.will;
  const propsLength = v5 ? propertiesLength(packet.properties, PacketType.CONNECT) : 0;
  const willPropsLength = v5 && will !== null ? propertiesLength(will.properties, WILL_PROPERTIES) : 0;

  // Protocol Name, Protocol Level, Connect Flags, Keep Alive, Client Identifier.
  let remaining = 2 + stringLength(packet.protocolName, 'CONNECT Protocol Name') + 1 + 1 + 2;
  remaining += 2 + stringLength(packet.clientId, 'CONNECT Client Identifier');
  if (v5) remaining += propertiesBlock(propsLength);
  if (will !== null) {
    if (v5) remaining += propertiesBlock(willPropsLength);
    remaining += 2 + stringLength(will.topic, 'CONNECT Will Topic') + 2 + binaryLength(will.payload, 'CONNECT Will Payload');
  }
  if (packet.username !== undefined) remaining += 2 + stringLength(packet.username, 'CONNECT User Name');
  if (packet.password !== undefined) remaining += 2 + binaryLength(packet.password, 'CONNECT Password');

  const buf = allocate(PacketType.CONNECT << 4, remaining);
  let pos = writeString(buf, bodyStart(buf, remaining), packet.protocolName);
  buf[pos++] = version;
  let flags = packet.cleanStart ? 0x02 : 0;
  if (will !== null) flags |= 0x04 | (will.qos << 3) | (will.retain ? 0x20 : 0);
  if (packet.password !== undefined) flags |= 0x40;
  if (packet.username !== undefined) flags |= 0x80;
  buf[pos++] = flags;
  buf.writeUInt16BE(packet.keepalive, pos);
  pos += 2;
  if (v5) pos = writeProperties(buf, pos, packet.properties, PacketType.CONNECT, propsLength);
  pos = writeString(buf, pos, packet.clientId);
  if (will !== null) {
    if (v5) pos = writeProperties(buf, pos, will.properties, WILL_PROPERTIES, willPropsLength);
    pos = writeString(buf, pos, will.topic);
    pos = writeBinary(buf, pos, will.payload);
  }
  if (packet.username !== undefined) pos = writeString(buf, pos, packet.username);
  if (packet.password !== undefined) writeBinary(buf, pos, packet.password);
  return buf;
}

function encodeConnack(packet: ConnackPacket, version: ProtocolVersion): Buffer {
  const propsLength = version === 5 ? propertiesLength(packet.properties, PacketType.CONNACK) : 0;
  const remaining = version === 5 ? 2 + propertiesBlock(propsLength) : 2;
  const buf = allocate(PacketType.CONNACK << 4, remaining);
  let pos = bodyStart(buf, remaining);
  // MQTT 3.1 has no Session Present flag: the byte is reserved there.
  buf[pos++] = packet.sessionPresent && version !== 3 ? 1 : 0;
  buf[pos++] = packet.reasonCode;
  if (version === 5) writeProperties(buf, pos, packet.properties, PacketType.CONNACK, propsLength);
  return buf;
}

function encodePublish(packet: PublishPacket, version: ProtocolVersion): Buffer {
  const qos = packet.qos;
  let packetId = 0;
  if (qos > 0) {
    if (packet.packetId === undefined) throw new RangeError(`PUBLISH with QoS ${qos} needs a packet id`);
    packetId = packet.packetId;
  }
  const propsLength = version === 5 ? propertiesLength(packet.properties, PacketType.PUBLISH) : 0;
  const variable = variableHeaderLength(stringLength(packet.topic, 'PUBLISH Topic Name'), qos, propsLength, version);
  const payload = packet.payload;
  const remaining = variable + payload.length;
  const buf = Buffer.allocUnsafe(1 + varintLength(remaining) + remaining);
  const pos = writePublishHeader(buf, packet.topic, qos, packet.retain, packet.dup, packetId, packet.properties, propsLength, remaining, version);
  payload.copy(buf, pos);
  return buf;
}

/**
 * PUBACK, PUBREC, PUBREL, PUBCOMP. MQTT 5 drops what the standard lets it drop: with no properties the
 * Property Length goes (Remaining Length 3), and a success code goes with it (Remaining Length 2).
 */
function encodeAck(packet: AckPacket, version: ProtocolVersion): Buffer {
  // PUBREL's fixed-header flags are 0b0010 [MQTT-3.6.1-1].
  const firstByte = (packet.type << 4) | (packet.type === PacketType.PUBREL ? 0x02 : 0);
  const propsLength = version === 5 ? propertiesLength(packet.properties, packet.type) : 0;
  let remaining = 2;
  if (version === 5) {
    if (propsLength > 0) remaining = 3 + propertiesBlock(propsLength);
    else if (packet.reasonCode !== 0) remaining = 3;
  }
  const buf = allocate(firstByte, remaining);
  let pos = bodyStart(buf, remaining);
  buf.writeUInt16BE(packet.packetId, pos);
  pos += 2;
  if (remaining > 2) {
    buf[pos++] = packet.reasonCode;
    if (remaining > 3) writeProperties(buf, pos, packet.properties, packet.type, propsLength);
  }
  return buf;
}

function encodeSubscribe(packet: SubscribePacket, version: ProtocolVersion): Buffer {
  const v5 = version === 5;
  const propsLength = v5 ? propertiesLength(packet.properties, PacketType.SUBSCRIBE) : 0;
  let remaining = 2 + (v5 ? propertiesBlock(propsLength) : 0);
  for (const subscription of packet.subscriptions) remaining += 3 + stringLength(subscription.filter, 'SUBSCRIBE Topic Filter');
  // SUBSCRIBE's fixed-header flags are 0b0010 [MQTT-3.8.1-1].
  const buf = allocate((PacketType.SUBSCRIBE << 4) | 0x02, remaining);
  let pos = bodyStart(buf, remaining);
  buf.writeUInt16BE(packet.packetId, pos);
  pos += 2;
  if (v5) pos = writeProperties(buf, pos, packet.properties, PacketType.SUBSCRIBE, propsLength);
  for (const subscription of packet.subscriptions) {
    pos = writeString(buf, pos, subscription.filter);
    let options = subscription.qos;
    if (v5) {
      if (subscription.noLocal) options |= 0x04;
      if (subscription.retainAsPublished) options |= 0x08;
      options |= subscription.retainHandling << 4;
    }
    buf[pos++] = options;
  }
  return buf;
}

function encodeSuback(packet: SubackPacket, version: ProtocolVersion): Buffer {
  return encodeCodes(PacketType.SUBACK << 4, PacketType.SUBACK, packet.packetId, packet.properties, packet.reasonCodes, version);
}

function encodeUnsuback(packet: UnsubackPacket, version: ProtocolVersion): Buffer {
  // A 3.x UNSUBACK is only the packet id.
  if (version !== 5) {
    const buf = allocate(PacketType.UNSUBACK << 4, 2);
    buf.writeUInt16BE(packet.packetId, 2);
    return buf;
  }
  return encodeCodes(PacketType.UNSUBACK << 4, PacketType.UNSUBACK, packet.packetId, packet.properties, packet.reasonCodes, version);
}

/** SUBACK and UNSUBACK: packet id, properties (MQTT 5), one byte per code. */
function encodeCodes(
  firstByte: number,
  context: PropertyContext,
  packetId: number,
  properties: Properties,
  codes: number[],
  version: ProtocolVersion,
): Buffer {
  const v5 = version === 5;
  const propsLength = v5 ? propertiesLength(properties, context) : 0;
  const remaining = 2 + (v5 ? propertiesBlock(propsLength) : 0) + codes.length;
  const buf = allocate(firstByte, remaining);
  let pos = bodyStart(buf, remaining);
  buf.writeUInt16BE(packetId, pos);
  pos += 2;
  if (v5) pos = writeProperties(buf, pos, properties, context, propsLength);
  for (const code of codes) buf[pos++] = code;
  return buf;
}

function encodeUnsubscribe(packet: UnsubscribePacket, version: ProtocolVersion): Buffer {
  const v5 = version === 5;
  const propsLength = v5 ? propertiesLength(packet.properties, PacketType.UNSUBSCRIBE) : 0;
  let remaining = 2 + (v5 ? propertiesBlock(propsLength) : 0);
  for (const filter of packet.filters) remaining += 2 + stringLength(filter, 'UNSUBSCRIBE Topic Filter');
  // UNSUBSCRIBE's fixed-header flags are 0b0010 [MQTT-3.10.1-1].
  const buf = allocate((PacketType.UNSUBSCRIBE << 4) | 0x02, remaining);
  let pos = bodyStart(buf, remaining);
  buf.writeUInt16BE(packet.packetId, pos);
  pos += 2;
  if (v5) pos = writeProperties(buf, pos, packet.properties, PacketType.UNSUBSCRIBE, propsLength);
  for (const filter of packet.filters) pos = writeString(buf, pos, filter);
  return buf;
}

/**
 * DISCONNECT and AUTH: empty for 3.x (DISCONNECT only); MQTT 5 writes nothing for success without
 * properties, the reason code alone without properties, else both.
 */
function encodeReasonOnly(packet: DisconnectPacket | AuthPacket, version: ProtocolVersion): Buffer {
  const propsLength = version === 5 ? propertiesLength(packet.properties, packet.type) : 0;
  let remaining = 0;
  if (version === 5) {
    if (propsLength > 0) remaining = 1 + propertiesBlock(propsLength);
    else if (packet.reasonCode !== 0) remaining = 1;
  }
  const buf = allocate(packet.type << 4, remaining);
  if (remaining > 0) {
    const pos = bodyStart(buf, remaining);
    buf[pos] = packet.reasonCode;
    if (remaining > 1) writeProperties(buf, pos + 1, packet.properties, packet.type, propsLength);
  }
  return buf;
}
