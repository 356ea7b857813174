import { PacketType } from './packets.js';
import type { Properties, ProtocolVersion, QoS } from './packets.js';
import { propertiesLength, stringLength, writeProperties, writeString } from './properties.js';
import { varintLength, writeVarint } from './varint.js';

/**
 * PUBLISH is the one packet encoded per subscriber, so its header is built apart from the payload: the
 * broker encodes the header once per (protocol version, QoS, properties), shares the payload Buffer
 * between subscribers and patches only the packet id (publishPacketIdOffset).
 */

/**
 * The fixed header, Topic Name, Packet Identifier (QoS > 0) and, for MQTT 5, the properties of a PUBLISH
 * whose payload of `payloadLength` bytes the caller writes right after it. A QoS > 0 header may be built
 * with packetId 0 and patched per subscriber. Properties a PUBLISH may not carry are left out.
 */
export function encodePublishHeader(
  topic: string,
  qos: QoS,
  retain: boolean,
  dup: boolean,
  packetId: number,
  properties: Properties | undefined,
  payloadLength: number,
  version: ProtocolVersion,
): Buffer {
  const topicLength = stringLength(topic, 'PUBLISH Topic Name');
  const propsLength = version === 5 ? propertiesLength(properties, PacketType.PUBLISH) : 0;
  const variable = variableHeaderLength(topicLength, qos, propsLength, version);
  const remaining = variable + payloadLength;
  const header = Buffer.allocUnsafe(1 + varintLength(remaining) + variable);
  writePublishHeader(header, topic, qos, retain, dup, packetId, properties, propsLength, remaining, version);
  return header;
}

/**
 * Where the 2-byte Packet Identifier sits inside a QoS 1/2 header from encodePublishHeader (or a whole
 * encoded PUBLISH): after the fixed header's Remaining Length and the Topic Name.
 */
export function publishPacketIdOffset(header: Buffer): number {
  let pos = 1;
  while ((header[pos]! & 0x80) !== 0) pos++;
  pos++;
  return pos + 2 + header.readUInt16BE(pos);
}

/** Topic Name, Packet Identifier and properties block, without the payload. */
export function variableHeaderLength(topicLength: number, qos: QoS, propsLength: number, version: ProtocolVersion): number {
  let length = 2 + topicLength;
  if (qos > 0) length += 2;
  if (version === 5) length += varintLength(propsLength) + propsLength;
  return length;
}

/** Writes everything but the payload into `buf` from offset 0; returns the offset where the payload goes. */
export function writePublishHeader(
  buf: Buffer,
  topic: string,
  qos: QoS,
  retain: boolean,
  dup: boolean,
  packetId: number,
  properties: Properties | undefined,
  propsLength: number,
  remaining: number,
  version: ProtocolVersion,
): number {
  buf[0] = (PacketType.PUBLISH << 4) | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 0x01 : 0);
  let pos = writeVarint(buf, 1, remaining);
  pos = writeString(buf, pos, topic);
  if (qos > 0) {
    buf.writeUInt16BE(packetId, pos);
    pos += 2;
  }
  if (version === 5) pos = writeProperties(buf, pos, properties, PacketType.PUBLISH, propsLength);
  return pos;
}
