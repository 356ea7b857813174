/** PUBREL for an inbound QoS 2 message: release the packet id and answer PUBCOMP [MQTT-4.3.3-11]. */
import { ReasonCode } from '@rmqtt-ts/plugin-api';
import type { AckPacket } from '../../codec/packets.js';
import type { Connection } from '../connection.js';

export function handlePubrel(conn: Connection, p: AckPacket): void | Promise<void> {
  const s = conn.session!;
  conn.deleteInboundQos2(p.packetId);
  if (s.deleteAwaitingRel(p.packetId)) {
    conn.kernel.metrics.gauges.in_inflights.dec();
    if (!s.persistent) {
      conn.sendAck(7, p.packetId, ReasonCode.Success);
      return;
    }
    // the released id is written before PUBCOMP: a restarted broker must not take the client's next
    // message with this id for a duplicate
    const since = conn.kernel.journal.seq;
    conn.kernel.journal.record({ op: 'awaitRel', clientId: s.clientId, packetId: p.packetId, pending: false });
    return conn.sendAckWhenWritten(7, p.packetId, ReasonCode.Success, since);
  } else {
    conn.sendAck(7, p.packetId, ReasonCode.PacketIdentifierNotFound);
  }
}
