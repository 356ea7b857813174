/**
 * mqtt.js's in-memory outgoing store, except that a PUBLISH it keeps is kept with DUP set: what mqtt.js
 * sends again from it after a reconnect is a re-delivery [MQTT-3.3.1-1], and mqtt.js itself never sets
 * DUP. mqtt.js stores a copy of the PUBLISH before writing the original, so the first send has DUP 0.
 */
import { Store } from 'mqtt';

type StoredPacket = Parameters<Store['put']>[0];

export class ResendStore extends Store {
  override put(packet: StoredPacket, cb: Parameters<Store['put']>[1]): this {
    if (packet.cmd === 'publish') packet.dup = true;
    return super.put(packet, cb);
  }
}
