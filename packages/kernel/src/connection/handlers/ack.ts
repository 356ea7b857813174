/** PUBACK, PUBREC, PUBCOMP from the client for messages the broker sent. */
import type { AckPacket } from '../../codec/packets.js';
import type { Connection } from '../connection.js';

export function handleAck(conn: Connection, p: AckPacket): void | Promise<void> {
  const out = conn.session!.out;
  if (p.type === 4) out.onPuback(p.packetId);
  else if (p.type === 5) return out.onPubrec(p.packetId, p.reasonCode);
  else out.onPubcomp(p.packetId);
}
