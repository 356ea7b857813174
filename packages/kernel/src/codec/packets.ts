/**
 * MQTT control packets as the kernel sees them, for protocol levels 3 (3.1), 4 (3.1.1) and 5 (5.0).
 * One shape for all versions: fields a version lacks are left at their defaults (reason code 0, no
 * properties).
 */

export const PacketType = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
  AUTH: 15,
} as const;
export type PacketTypeCode = (typeof PacketType)[keyof typeof PacketType];

export type ProtocolVersion = 3 | 4 | 5;
export type QoS = 0 | 1 | 2;

/** A user property is one name/value pair; order and duplicates are kept as they came. */
export type UserProperty = [name: string, value: string];

/** MQTT 5 properties by name. Each packet type allows a subset (see codec/properties.ts). */
export interface Properties {
  payloadFormatIndicator?: number; // 0x01 byte (0 or 1)
  messageExpiryInterval?: number; // 0x02 four-byte integer
  contentType?: string; // 0x03
  responseTopic?: string; // 0x08
  correlationData?: Buffer; // 0x09
  /** 0x0B variable byte integer; several only in a server-to-client PUBLISH. */
  subscriptionIdentifiers?: number[];
  sessionExpiryInterval?: number; // 0x11
  assignedClientIdentifier?: string; // 0x12
  serverKeepAlive?: number; // 0x13
  authenticationMethod?: string; // 0x15
  authenticationData?: Buffer; // 0x16
  requestProblemInformation?: number; // 0x17 byte (0 or 1)
  willDelayInterval?: number; // 0x18
  requestResponseInformation?: number; // 0x19 byte (0 or 1)
  responseInformation?: string; // 0x1A
  serverReference?: string; // 0x1C
  reasonString?: string; // 0x1F
  receiveMaximum?: number; // 0x21 two-byte integer
  topicAliasMaximum?: number; // 0x22
  topicAlias?: number; // 0x23
  maximumQoS?: number; // 0x24 byte (0 or 1)
  retainAvailable?: number; // 0x25 byte (0 or 1)
  userProperties?: UserProperty[]; // 0x26
  maximumPacketSize?: number; // 0x27
  wildcardSubscriptionAvailable?: number; // 0x28 byte (0 or 1)
  subscriptionIdentifiersAvailable?: number; // 0x29 byte (0 or 1)
  sharedSubscriptionAvailable?: number; // 0x2A byte (0 or 1)
}

export interface Will {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  /** Will properties (MQTT 5): willDelayInterval, payloadFormatIndicator, messageExpiryInterval, ... */
  properties: Properties;
}

export interface ConnectPacket {
  type: 1;
  protocolName: string; // "MQTT" (4, 5) or "MQIsdp" (3)
  protocolVersion: ProtocolVersion;
  /** Clean Session (3.x) or Clean Start (5). */
  cleanStart: boolean;
  keepalive: number;
  clientId: string;
  will: Will | null;
  username: string | undefined;
  password: Buffer | undefined;
  properties: Properties;
}

export interface ConnackPacket {
  type: 2;
  sessionPresent: boolean;
  /** MQTT 5 reason code, or the 3.x return code (0x00-0x05). */
  reasonCode: number;
  properties: Properties;
}

export interface PublishPacket {
  type: 3;
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  /** Present for QoS 1 and 2 only. */
  packetId: number | undefined;
  properties: Properties;
}

/** PUBACK, PUBREC, PUBREL and PUBCOMP share one shape. */
export interface AckPacket {
  type: 4 | 5 | 6 | 7;
  packetId: number;
  reasonCode: number;
  properties: Properties;
}

export interface SubscriptionRequest {
  filter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
}

export interface SubscribePacket {
  type: 8;
  packetId: number;
  subscriptions: SubscriptionRequest[];
  properties: Properties;
}

export interface SubackPacket {
  type: 9;
  packetId: number;
  reasonCodes: number[];
  properties: Properties;
}

export interface UnsubscribePacket {
  type: 10;
  packetId: number;
  filters: string[];
  properties: Properties;
}

export interface UnsubackPacket {
  type: 11;
  packetId: number;
  /** Empty for 3.x (UNSUBACK has no payload there). */
  reasonCodes: number[];
  properties: Properties;
}

export interface PingreqPacket {
  type: 12;
}
export interface PingrespPacket {
  type: 13;
}

export interface DisconnectPacket {
  type: 14;
  reasonCode: number;
  properties: Properties;
}

export interface AuthPacket {
  type: 15;
  reasonCode: number;
  properties: Properties;
}

export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | AckPacket
  | SubscribePacket
  | SubackPacket
  | UnsubscribePacket
  | UnsubackPacket
  | PingreqPacket
  | PingrespPacket
  | DisconnectPacket
  | AuthPacket;
