export { DecodeError, DecodeReason } from './decode-error.js';
export type { DecodeReasonCode } from './decode-error.js';
export { Decoder } from './decoder.js';
export type { DecoderOptions } from './decoder.js';
export { encode } from './encoder.js';
export { encodePublishHeader, publishPacketIdOffset } from './publish-encoder.js';
export { isPropertyAllowed, propertiesLength, PropertyId, WILL_PROPERTIES } from './properties.js';
export type { PropertyContext } from './properties.js';
export { MAX_VARINT, varintLength } from './varint.js';
export { PacketType } from './packets.js';
export type {
  AckPacket,
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  PacketTypeCode,
  PingreqPacket,
  PingrespPacket,
  Properties,
  ProtocolVersion,
  PublishPacket,
  QoS,
  SubackPacket,
  SubscribePacket,
  SubscriptionRequest,
  UnsubackPacket,
  UnsubscribePacket,
  UserProperty,
  Will,
} from './packets.js';
