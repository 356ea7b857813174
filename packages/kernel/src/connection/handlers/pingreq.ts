/** PINGREQ → PINGRESP [MQTT-3.12.4-1]. */
import type { Connection } from '../connection.js';

const PINGRESP = Buffer.from([0xd0, 0x00]);

export function handlePingreq(conn: Connection): void {
  conn.transport.write(PINGRESP);
  const hooks = conn.kernel.hooks;
  if (conn.session !== null && hooks.active['client.keepalive']) {
    hooks.observe('client.keepalive', { client: conn.session.info, isPing: true });
  }
}
