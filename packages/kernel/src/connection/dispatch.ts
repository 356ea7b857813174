/** Route a decoded packet to its handler, enforcing which packets a client may send in which state. */
import { ReasonCode } from '@rmqtt-ts/plugin-api';
import type { Packet } from '../codec/packets.js';
import type { Connection } from './connection.js';
import { handleAck } from './handlers/ack.js';
import { handleAuth } from './handlers/auth.js';
import { handleConnect } from './handlers/connect.js';
import { handleDisconnect } from './handlers/disconnect.js';
import { handlePingreq } from './handlers/pingreq.js';
import { handlePublish } from './handlers/publish.js';
import { handlePubrel } from './handlers/pubrel.js';
import { handleSubscribe } from './handlers/subscribe.js';
import { handleUnsubscribe } from './handlers/unsubscribe.js';

export function dispatchPacket(conn: Connection, packet: Packet): void | Promise<void> {
  if (conn.state === 'handshake') return handleConnect(conn, packet as Extract<Packet, { type: 1 }>);
  if (conn.state === 'auth') {
    // during enhanced authentication only AUTH (and DISCONNECT) may come [MQTT-4.12.0-?]
    if (packet.type === 15) return handleAuth(conn, packet);
    if (packet.type === 14) return handleDisconnect(conn, packet);
    conn.protocolFailure(ReasonCode.ProtocolError, 'only AUTH is allowed during authentication');
    return;
  }
  switch (packet.type) {
    case 3:
      return handlePublish(conn, packet);
    case 4:
    case 5:
    case 7:
      return handleAck(conn, packet);
    case 6:
      return handlePubrel(conn, packet);
    case 8:
      return handleSubscribe(conn, packet);
    case 10:
      return handleUnsubscribe(conn, packet);
    case 12:
      return handlePingreq(conn);
    case 14:
      return handleDisconnect(conn, packet);
    case 15:
      return handleAuth(conn, packet);
    case 1:
      // [MQTT-3.1.0-2] a second CONNECT is a protocol error
      conn.protocolFailure(ReasonCode.ProtocolError, 'second CONNECT');
      return;
    default:
      // CONNACK, SUBACK, UNSUBACK, PINGRESP are server packets
      conn.protocolFailure(ReasonCode.ProtocolError, `packet type ${packet.type} is not allowed from a client`);
      return;
  }
}
