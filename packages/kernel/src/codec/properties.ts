import { malformed, protocolError } from './decode-error.js';
import { PacketType } from './packets.js';
import type { PacketTypeCode, Properties, UserProperty } from './packets.js';
import type { Reader } from './reader.js';
import { MAX_VARINT, varintLength, writeVarint } from './varint.js';

/** MQTT 5 property identifiers (MQTT 5.0 table 2-4). */
export const PropertyId = {
  PAYLOAD_FORMAT_INDICATOR: 0x01,
  MESSAGE_EXPIRY_INTERVAL: 0x02,
  CONTENT_TYPE: 0x03,
  RESPONSE_TOPIC: 0x08,
  CORRELATION_DATA: 0x09,
  SUBSCRIPTION_IDENTIFIER: 0x0b,
  SESSION_EXPIRY_INTERVAL: 0x11,
  ASSIGNED_CLIENT_IDENTIFIER: 0x12,
  SERVER_KEEP_ALIVE: 0x13,
  AUTHENTICATION_METHOD: 0x15,
  AUTHENTICATION_DATA: 0x16,
  REQUEST_PROBLEM_INFORMATION: 0x17,
  WILL_DELAY_INTERVAL: 0x18,
  REQUEST_RESPONSE_INFORMATION: 0x19,
  RESPONSE_INFORMATION: 0x1a,
  SERVER_REFERENCE: 0x1c,
  REASON_STRING: 0x1f,
  RECEIVE_MAXIMUM: 0x21,
  TOPIC_ALIAS_MAXIMUM: 0x22,
  TOPIC_ALIAS: 0x23,
  MAXIMUM_QOS: 0x24,
  RETAIN_AVAILABLE: 0x25,
  USER_PROPERTY: 0x26,
  MAXIMUM_PACKET_SIZE: 0x27,
  WILDCARD_SUBSCRIPTION_AVAILABLE: 0x28,
  SUBSCRIPTION_IDENTIFIERS_AVAILABLE: 0x29,
  SHARED_SUBSCRIPTION_AVAILABLE: 0x2a,
} as const;

/**
 * Where a property list appears: a packet type, or WILL_PROPERTIES for the will properties inside a
 * CONNECT. Packet type 0 is reserved, so 0 is free to name the will.
 */
export const WILL_PROPERTIES = 0;
export type PropertyContext = typeof WILL_PROPERTIES | PacketTypeCode;

const enum Kind {
  /** One byte that must be 0 or 1. */
  Flag,
  TwoByte,
  FourByte,
  Varint,
  String,
  Binary,
  Pair,
}

interface PropertyDescriptor {
  readonly id: number;
  readonly key: keyof Properties;
  readonly name: string;
  readonly kind: Kind;
  /** Bit set of the contexts allowing this property (bit n = packet type n, bit 0 = will). */
  readonly allowedIn: number;
}

function contexts(...list: PropertyContext[]): number {
  let mask = 0;
  for (const context of list) mask |= 1 << context;
  return mask;
}

const W = WILL_PROPERTIES;
const { CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, DISCONNECT, AUTH } =
  PacketType;
const ACKS_AND_REPLIES = contexts(CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH);

// MQTT 5.0 table 2-4: the packets each property may appear in.
const DESCRIPTORS: readonly PropertyDescriptor[] = [
  { id: 0x01, key: 'payloadFormatIndicator', name: 'Payload Format Indicator', kind: Kind.Flag, allowedIn: contexts(PUBLISH, W) },
  { id: 0x02, key: 'messageExpiryInterval', name: 'Message Expiry Interval', kind: Kind.FourByte, allowedIn: contexts(PUBLISH, W) },
  { id: 0x03, key: 'contentType', name: 'Content Type', kind: Kind.String, allowedIn: contexts(PUBLISH, W) },
  { id: 0x08, key: 'responseTopic', name: 'Response Topic', kind: Kind.String, allowedIn: contexts(PUBLISH, W) },
  { id: 0x09, key: 'correlationData', name: 'Correlation Data', kind: Kind.Binary, allowedIn: contexts(PUBLISH, W) },
  { id: 0x0b, key: 'subscriptionIdentifiers', name: 'Subscription Identifier', kind: Kind.Varint, allowedIn: contexts(PUBLISH, SUBSCRIBE) },
  { id: 0x11, key: 'sessionExpiryInterval', name: 'Session Expiry Interval', kind: Kind.FourByte, allowedIn: contexts(CONNECT, CONNACK, DISCONNECT) },
  { id: 0x12, key: 'assignedClientIdentifier', name: 'Assigned Client Identifier', kind: Kind.String, allowedIn: contexts(CONNACK) },
  { id: 0x13, key: 'serverKeepAlive', name: 'Server Keep Alive', kind: Kind.TwoByte, allowedIn: contexts(CONNACK) },
  { id: 0x15, key: 'authenticationMethod', name: 'Authentication Method', kind: Kind.String, allowedIn: contexts(CONNECT, CONNACK, AUTH) },
  { id: 0x16, key: 'authenticationData', name: 'Authentication Data', kind: Kind.Binary, allowedIn: contexts(CONNECT, CONNACK, AUTH) },
  { id: 0x17, key: 'requestProblemInformation', name: 'Request Problem Information', kind: Kind.Flag, allowedIn: contexts(CONNECT) },
  { id: 0x18, key: 'willDelayInterval', name: 'Will Delay Interval', kind: Kind.FourByte, allowedIn: contexts(W) },
  { id: 0x19, key: 'requestResponseInformation', name: 'Request Response Information', kind: Kind.Flag, allowedIn: contexts(CONNECT) },
  { id: 0x1a, key: 'responseInformation', name: 'Response Information', kind: Kind.String, allowedIn: contexts(CONNACK) },
  { id: 0x1c, key: 'serverReference', name: 'Server Reference', kind: Kind.String, allowedIn: contexts(CONNACK, DISCONNECT) },
  { id: 0x1f, key: 'reasonString', name: 'Reason String', kind: Kind.String, allowedIn: ACKS_AND_REPLIES },
  { id: 0x21, key: 'receiveMaximum', name: 'Receive Maximum', kind: Kind.TwoByte, allowedIn: contexts(CONNECT, CONNACK) },
  { id: 0x22, key: 'topicAliasMaximum', name: 'Topic Alias Maximum', kind: Kind.TwoByte, allowedIn: contexts(CONNECT, CONNACK) },
  { id: 0x23, key: 'topicAlias', name: 'Topic Alias', kind: Kind.TwoByte, allowedIn: contexts(PUBLISH) },
  { id: 0x24, key: 'maximumQoS', name: 'Maximum QoS', kind: Kind.Flag, allowedIn: contexts(CONNACK) },
  { id: 0x25, key: 'retainAvailable', name: 'Retain Available', kind: Kind.Flag, allowedIn: contexts(CONNACK) },
  {
    id: 0x26,
    key: 'userProperties',
    name: 'User Property',
    kind: Kind.Pair,
    allowedIn: ACKS_AND_REPLIES | contexts(CONNECT, PUBLISH, W, SUBSCRIBE, UNSUBSCRIBE),
  },
  { id: 0x27, key: 'maximumPacketSize', name: 'Maximum Packet Size', kind: Kind.FourByte, allowedIn: contexts(CONNECT, CONNACK) },
  { id: 0x28, key: 'wildcardSubscriptionAvailable', name: 'Wildcard Subscription Available', kind: Kind.Flag, allowedIn: contexts(CONNACK) },
  { id: 0x29, key: 'subscriptionIdentifiersAvailable', name: 'Subscription Identifiers Available', kind: Kind.Flag, allowedIn: contexts(CONNACK) },
  { id: 0x2a, key: 'sharedSubscriptionAvailable', name: 'Shared Subscription Available', kind: Kind.Flag, allowedIn: contexts(CONNACK) },
];

const BY_ID: (PropertyDescriptor | undefined)[] = new Array<PropertyDescriptor | undefined>(0x2b).fill(undefined);
const BY_KEY: Record<string, PropertyDescriptor | undefined> = Object.create(null) as Record<string, PropertyDescriptor | undefined>;
for (const descriptor of DESCRIPTORS) {
  BY_ID[descriptor.id] = descriptor;
  BY_KEY[descriptor.key] = descriptor;
}

/** Whether a property (by id) may appear in a context, per MQTT 5.0 table 2-4. */
export function isPropertyAllowed(id: number, context: PropertyContext): boolean {
  const descriptor = id < BY_ID.length ? BY_ID[id] : undefined;
  return descriptor !== undefined && (descriptor.allowedIn & (1 << context)) !== 0;
}

// ----------------------------------------------------------------------------------------------
// Reading
// ----------------------------------------------------------------------------------------------

/**
 * Reads a Property Length and the property list it announces. `repeatSubscriptionIds` allows several
 * Subscription Identifiers, which only a server-to-client PUBLISH may carry [MQTT-3.3.4-4]; everywhere
 * else a second one is a Protocol Error like any repeated single-valued property.
 */
export function readProperties(reader: Reader, context: PropertyContext, repeatSubscriptionIds: boolean): Properties {
  const length = reader.varint('Property Length');
  const end = reader.pos + length;
  if (end > reader.end) throw malformed(`${reader.packet} Property Length ${length} runs past the end of the packet`);
  const properties: Properties = {};
  if (length === 0) return properties;
  const outerEnd = reader.end;
  // Narrow the reader so that no property value can be read from beyond the property list.
  reader.end = end;
  const bag = properties as Record<string, unknown>;
  const contextBit = 1 << context;
  while (reader.pos < end) {
    const id = reader.u8('property identifier');
    const descriptor = id < BY_ID.length ? BY_ID[id] : undefined;
    if (descriptor === undefined) throw malformed(`${reader.packet} has an unknown property identifier 0x${hex(id)}`);
    if ((descriptor.allowedIn & contextBit) === 0) {
      throw malformed(`${reader.packet} may not carry the ${descriptor.name} property (0x${hex(id)})`);
    }
    const name = descriptor.name;
    switch (descriptor.kind) {
      case Kind.Pair: {
        const pair: UserProperty = [reader.utf8('User Property name'), reader.utf8('User Property value')];
        if (properties.userProperties === undefined) properties.userProperties = [pair];
        else properties.userProperties.push(pair);
        continue;
      }
      case Kind.Varint: {
        // The only Variable Byte Integer property is the Subscription Identifier.
        const value = reader.varint(name);
        if (value === 0) throw protocolError(`${reader.packet} Subscription Identifier is 0`);
        const list = properties.subscriptionIdentifiers;
        if (list === undefined) properties.subscriptionIdentifiers = [value];
        else if (repeatSubscriptionIds) list.push(value);
        else throw protocolError(`${reader.packet} carries the Subscription Identifier property more than once`);
        continue;
      }
      default:
        break;
    }
    // Every other property is single-valued: a second occurrence is a Protocol Error.
    if (bag[descriptor.key] !== undefined) {
      throw protocolError(`${reader.packet} carries the ${name} property more than once`);
    }
    bag[descriptor.key] = readSingleValue(reader, descriptor);
  }
  reader.end = outerEnd;
  return properties;
}

function readSingleValue(reader: Reader, descriptor: PropertyDescriptor): number | string | Buffer {
  const name = descriptor.name;
  switch (descriptor.kind) {
    case Kind.Flag: {
      const value = reader.u8(name);
      if (value > 1) throw protocolError(`${reader.packet} ${name} is ${value}; it must be 0 or 1`);
      return value;
    }
    case Kind.TwoByte: {
      const value = reader.u16(name);
      if (value === 0 && descriptor.id === PropertyId.RECEIVE_MAXIMUM) {
        throw protocolError(`${reader.packet} Receive Maximum is 0`);
      }
      return value;
    }
    case Kind.FourByte: {
      const value = reader.u32(name);
      if (value === 0 && descriptor.id === PropertyId.MAXIMUM_PACKET_SIZE) {
        throw protocolError(`${reader.packet} Maximum Packet Size is 0`);
      }
      return value;
    }
    case Kind.String: {
      const value = reader.utf8(name);
      if (descriptor.id === PropertyId.RESPONSE_TOPIC && hasWildcard(value)) {
        throw protocolError(`${reader.packet} Response Topic contains a wildcard [MQTT-3.3.2-14]`);
      }
      return value;
    }
    case Kind.Binary:
      return reader.binary(name);
    default:
      // Pair and Varint are handled by the caller; reaching here is a table error, still not a crash.
      throw malformed(`${reader.packet} ${name} has an unexpected type`);
  }
}

export function hasWildcard(topic: string): boolean {
  return topic.includes('+') || topic.includes('#');
}

function hex(id: number): string {
  return id.toString(16).padStart(2, '0');
}

// ----------------------------------------------------------------------------------------------
// Writing
// ----------------------------------------------------------------------------------------------

const ALL_CONTEXTS = -1;

/**
 * Byte length of the encoded property list, without the Property Length varint in front of it.
 * With a context, only the properties that context allows are counted — exactly what the encoder
 * writes for that packet (it leaves the others out rather than send a packet the peer must reject).
 * Without one every known property counts. Unknown keys and undefined values are ignored.
 */
export function propertiesLength(properties: Properties | undefined, context: PropertyContext | typeof ALL_CONTEXTS = ALL_CONTEXTS): number {
  if (properties === undefined) return 0;
  const contextBit = context === ALL_CONTEXTS ? -1 : 1 << context;
  const bag = properties as Record<string, unknown>;
  let length = 0;
  // Walking the object's own keys costs nothing for the common empty `{}`.
  for (const key in bag) {
    const value = bag[key];
    if (value === undefined) continue;
    const descriptor = BY_KEY[key];
    if (descriptor === undefined || (descriptor.allowedIn & contextBit) === 0) continue;
    length += valueLength(descriptor, value);
  }
  return length;
}

function valueLength(descriptor: PropertyDescriptor, value: unknown): number {
  switch (descriptor.kind) {
    case Kind.Flag:
      return 2;
    case Kind.TwoByte:
      return 3;
    case Kind.FourByte:
      return 5;
    case Kind.Varint: {
      let length = 0;
      for (const id of value as number[]) length += 1 + varintLength(checkSubscriptionId(id));
      return length;
    }
    case Kind.String:
      return 3 + stringLength(value as string, descriptor.name);
    case Kind.Binary:
      return 3 + binaryLength(value as Buffer, descriptor.name);
    case Kind.Pair: {
      let length = 0;
      for (const [name, pairValue] of value as UserProperty[]) {
        length += 5 + stringLength(name, 'User Property name') + stringLength(pairValue, 'User Property value');
      }
      return length;
    }
  }
}

/**
 * Writes the Property Length `length` (from propertiesLength with the same context) and the list.
 * Returns the offset after the last byte written.
 */
export function writeProperties(buf: Buffer, offset: number, properties: Properties | undefined, context: PropertyContext, length: number): number {
  let pos = writeVarint(buf, offset, length);
  if (properties === undefined || length === 0) return pos;
  const contextBit = 1 << context;
  const bag = properties as Record<string, unknown>;
  for (const key in bag) {
    const value = bag[key];
    if (value === undefined) continue;
    const descriptor = BY_KEY[key];
    if (descriptor === undefined || (descriptor.allowedIn & contextBit) === 0) continue;
    pos = writeValue(buf, pos, descriptor, value);
  }
  return pos;
}

function writeValue(buf: Buffer, pos: number, descriptor: PropertyDescriptor, value: unknown): number {
  const id = descriptor.id;
  switch (descriptor.kind) {
    case Kind.Flag:
      buf[pos] = id;
      buf[pos + 1] = value as number;
      return pos + 2;
    case Kind.TwoByte:
      buf[pos] = id;
      buf.writeUInt16BE(value as number, pos + 1);
      return pos + 3;
    case Kind.FourByte:
      buf[pos] = id;
      buf.writeUInt32BE(value as number, pos + 1);
      return pos + 5;
    case Kind.Varint:
      for (const subscriptionId of value as number[]) {
        buf[pos] = id;
        pos = writeVarint(buf, pos + 1, subscriptionId);
      }
      return pos;
    case Kind.String:
      buf[pos] = id;
      return writeString(buf, pos + 1, value as string);
    case Kind.Binary:
      buf[pos] = id;
      return writeBinary(buf, pos + 1, value as Buffer);
    case Kind.Pair:
      for (const [name, pairValue] of value as UserProperty[]) {
        buf[pos] = id;
        pos = writeString(buf, writeString(buf, pos + 1, name), pairValue);
      }
      return pos;
  }
}

// ----------------------------------------------------------------------------------------------
// Strings and binary data, shared with the encoder
// ----------------------------------------------------------------------------------------------

/** UTF-8 byte length of a string field; over 65535 cannot be encoded at all. */
export function stringLength(value: string, field: string): number {
  const length = Buffer.byteLength(value, 'utf8');
  if (length > 0xffff) throw new RangeError(`${field} is ${length} bytes long; an MQTT string holds at most 65535`);
  return length;
}

export function binaryLength(value: Buffer, field: string): number {
  const length = value.length;
  if (length > 0xffff) throw new RangeError(`${field} is ${length} bytes long; MQTT binary data holds at most 65535`);
  return length;
}

/** Writes a 2-byte length and the UTF-8 bytes; the buffer was sized with stringLength. */
export function writeString(buf: Buffer, pos: number, value: string): number {
  const written = buf.write(value, pos + 2, 'utf8');
  buf.writeUInt16BE(written, pos);
  return pos + 2 + written;
}

export function writeBinary(buf: Buffer, pos: number, value: Buffer): number {
  buf.writeUInt16BE(value.length, pos);
  value.copy(buf, pos + 2);
  return pos + 2 + value.length;
}

function checkSubscriptionId(id: number): number {
  if (!Number.isInteger(id) || id < 1 || id > MAX_VARINT) {
    throw new RangeError(`Subscription Identifier ${id} is outside 1..268435455`);
  }
  return id;
}
