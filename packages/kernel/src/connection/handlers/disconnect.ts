/** DISCONNECT from the client: a normal end suppresses the will unless the reason is 0x04. */
import { ReasonCode } from '@rmqtt-ts/plugin-api';
import type { DisconnectPacket } from '../../codec/packets.js';
import type { Connection } from '../connection.js';
import { effectiveSessionExpiry } from '../../session/expiry.js';

export function handleDisconnect(conn: Connection, p: DisconnectPacket): void {
  const s = conn.session;
  const requested = p.properties.sessionExpiryInterval;
  if (s !== null && requested !== undefined) {
    // [MQTT-3.14.2-2] a session that was to end at disconnect cannot be extended now
    if (conn.connectSessionExpiry === 0 && requested !== 0) {
      conn.protocolFailure(ReasonCode.ProtocolError, 'Session Expiry Interval set on DISCONNECT after 0 on CONNECT');
      return;
    }
    s.expiryInterval = effectiveSessionExpiry(requested, conn.listener);
  }
  // [MQTT-3.14.4-3] the will is discarded on a normal DISCONNECT; 0x04 asks for it to be published
  const withWill = p.reasonCode === ReasonCode.DisconnectWithWillMessage;
  conn.willSuppressed = !withWill;
  conn.teardown({ code: p.reasonCode, by: 'client', message: 'client disconnected' }, withWill);
}
