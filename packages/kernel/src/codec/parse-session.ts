import { DecodeError, DecodeReason, malformed, protocolError } from './decode-error.js';
import { PacketType } from './packets.js';
import type { AuthPacket, ConnackPacket, ConnectPacket, DisconnectPacket, Properties, ProtocolVersion, QoS, Will } from './packets.js';
import { hasWildcard, readProperties, WILL_PROPERTIES } from './properties.js';
import type { Reader } from './reader.js';

// CONNECT flag bits (MQTT 5.0 3.1.2.3).
const RESERVED = 0x01;
const CLEAN_START = 0x02;
const WILL = 0x04;
const WILL_RETAIN = 0x20;
const PASSWORD = 0x40;
const USERNAME = 0x80;

/** CONNECT for all three levels; the packet's own level decides its layout, not the decoder's state. */
export function parseConnect(reader: Reader): ConnectPacket {
  // A protocol name that is not even a valid string is malformed (0x81); a valid but unknown name or
  // level is an unsupported version (0x84), which the connection answers with a CONNACK.
  const protocolName = reader.utf8('Protocol Name');
  const level = reader.u8('Protocol Level');
  let protocolVersion: ProtocolVersion;
  if (protocolName === 'MQTT' && (level === 4 || level === 5)) protocolVersion = level;
  else if (protocolName === 'MQIsdp' && level === 3) protocolVersion = 3;
  else {
    throw new DecodeError(
      DecodeReason.UNSUPPORTED_PROTOCOL_VERSION,
      `CONNECT protocol name ${JSON.stringify(protocolName.slice(0, 16))} with level ${level} is not supported`,
    );
  }

  const flags = reader.u8('Connect Flags');
  if ((flags & RESERVED) !== 0) throw malformed('CONNECT reserved flag (bit 0) is set [MQTT-3.1.2-3]');
  const willFlag = (flags & WILL) !== 0;
  const willQos = (flags >> 3) & 0x03;
  const willRetain = (flags & WILL_RETAIN) !== 0;
  if (!willFlag) {
    if (willQos !== 0) throw malformed('CONNECT Will QoS is not 0 while the Will Flag is 0 [MQTT-3.1.2-11]');
    if (willRetain) throw malformed('CONNECT Will Retain is set while the Will Flag is 0 [MQTT-3.1.2-13]');
  } else if (willQos === 3) {
    throw malformed('CONNECT Will QoS is 3 [MQTT-3.1.2-12]');
  }
  const usernameFlag = (flags & USERNAME) !== 0;
  const passwordFlag = (flags & PASSWORD) !== 0;
  // MQTT 5 allows a password without a user name; 3.1 and 3.1.1 do not.
  if (protocolVersion !== 5 && passwordFlag && !usernameFlag) {
    throw malformed('CONNECT Password Flag is set without the User Name Flag [MQTT-3.1.2-22]');
  }

  const keepalive = reader.u16('Keep Alive');
  const properties = protocolVersion === 5 ? readProperties(reader, PacketType.CONNECT, false) : {};
  const clientId = reader.utf8('Client Identifier');

  let will: Will | null = null;
  if (willFlag) {
    reader.packet = 'CONNECT will';
    const willProperties = protocolVersion === 5 ? readProperties(reader, WILL_PROPERTIES, false) : {};
    reader.packet = 'CONNECT';
    const topic = reader.utf8('Will Topic');
    if (topic.length === 0) throw protocolError('CONNECT Will Topic is empty [MQTT-4.7.3-1]');
    if (hasWildcard(topic)) throw protocolError('CONNECT Will Topic contains a wildcard [MQTT-4.7.1-1]');
    const payload = reader.binary('Will Payload');
    will = { topic, payload, qos: willQos as QoS, retain: willRetain, properties: willProperties };
  }

  const username = usernameFlag ? reader.utf8('User Name') : undefined;
  const password = passwordFlag ? reader.binary('Password') : undefined;
  reader.expectEnd();

  return {
    type: PacketType.CONNECT,
    protocolName,
    protocolVersion,
    cleanStart: (flags & CLEAN_START) !== 0,
    keepalive,
    clientId,
    will,
    username,
    password,
    properties,
  };
}

export function parseConnack(reader: Reader, version: number): ConnackPacket {
  const flags = reader.u8('Connect Acknowledge Flags');
  if ((flags & 0xfe) !== 0) throw malformed('CONNACK reserved flag bits 7-1 are set [MQTT-3.2.2-1]');
  const reasonCode = reader.u8('reason code');
  const properties = version === 5 ? readProperties(reader, PacketType.CONNACK, false) : {};
  reader.expectEnd();
  return { type: PacketType.CONNACK, sessionPresent: flags === 1, reasonCode, properties };
}

/**
 * DISCONNECT and AUTH share a layout in MQTT 5: nothing (reason 0), a reason code alone, or a reason
 * code and properties. A 3.x DISCONNECT is always empty.
 */
export function parseDisconnect(reader: Reader, version: number): DisconnectPacket {
  let reasonCode = 0;
  let properties: Properties = {};
  if (version === 5 && reader.remaining > 0) {
    reasonCode = reader.u8('reason code');
    if (reader.remaining > 0) properties = readProperties(reader, PacketType.DISCONNECT, false);
  }
  reader.expectEnd();
  return { type: PacketType.DISCONNECT, reasonCode, properties };
}

/** AUTH exists only in MQTT 5; the decoder rejects it for other levels before getting here. */
export function parseAuth(reader: Reader): AuthPacket {
  let reasonCode = 0;
  let properties: Properties = {};
  if (reader.remaining > 0) {
    reasonCode = reader.u8('reason code');
    if (reader.remaining > 0) properties = readProperties(reader, PacketType.AUTH, false);
  }
  reader.expectEnd();
  return { type: PacketType.AUTH, reasonCode, properties };
}
