/**
 * One routing pass's encodings of a message: a PUBLISH is encoded once per (protocol version, QoS,
 * RETAIN) and the bytes shared by every subscriber that needs no per-subscriber properties (subscription
 * identifiers, topic alias); QoS 1/2 copies only patch the packet id.
 */
import type { Message, QoS } from '@rmqtt-ts/plugin-api';
import { encodePublishHeader, publishPacketIdOffset } from '../codec/index.js';
import type { Properties, ProtocolVersion } from '../codec/packets.js';

/** Properties of an outgoing v5 PUBLISH for a message, without per-subscriber ones. */
export function messageProperties(msg: Message, now: number): Properties | undefined {
  const p = msg.properties;
  const hasExpiry = p.messageExpiryInterval !== undefined && msg.expiresAt !== 0;
  if (
    p.payloadFormatIndicator === undefined &&
    !hasExpiry &&
    p.contentType === undefined &&
    p.responseTopic === undefined &&
    p.correlationData === undefined &&
    p.userProperties === undefined
  ) {
    return undefined;
  }
  const out: Properties = {};
  if (p.payloadFormatIndicator !== undefined) out.payloadFormatIndicator = p.payloadFormatIndicator;
  // the remaining lifetime, never the broker's own default [MQTT-3.3.2-6]
  if (hasExpiry) out.messageExpiryInterval = Math.max(1, Math.ceil((msg.expiresAt - now) / 1000));
  if (p.contentType !== undefined) out.contentType = p.contentType;
  if (p.responseTopic !== undefined) out.responseTopic = p.responseTopic;
  if (p.correlationData !== undefined) out.correlationData = p.correlationData;
  if (p.userProperties !== undefined) out.userProperties = p.userProperties;
  return out;
}

export class EncodeCache {
  readonly message: Message;
  readonly now: number;
  /** index: (version − 3) × 6 + qos × 2 + retain */
  readonly #headers: (Buffer | undefined)[] = new Array(18);
  readonly #packets: (Buffer | undefined)[] = new Array(18);
  #props: Properties | undefined | null = null;

  constructor(message: Message, now: number) {
    this.message = message;
    this.now = now;
  }

  properties(): Properties | undefined {
    if (this.#props === null) this.#props = messageProperties(this.message, this.now);
    return this.#props;
  }

  /** The PUBLISH up to the payload (packet id 0 for QoS > 0; the caller patches a copy). */
  header(version: ProtocolVersion, qos: QoS, retain: boolean): Buffer {
    const i = (version - 3) * 6 + qos * 2 + (retain ? 1 : 0);
    let h = this.#headers[i];
    if (h === undefined) {
      const m = this.message;
      h = encodePublishHeader(m.topic, qos, retain, false, qos > 0 ? 1 : 0, version === 5 ? this.properties() : undefined, m.payload.length, version);
      this.#headers[i] = h;
    }
    return h;
  }

  /** The whole PUBLISH, header and payload in one buffer (for QoS 0, and small QoS 1/2 copies). */
  packet(version: ProtocolVersion, qos: QoS, retain: boolean): Buffer {
    const i = (version - 3) * 6 + qos * 2 + (retain ? 1 : 0);
    let p = this.#packets[i];
    if (p === undefined) {
      const header = this.header(version, qos, retain);
      const payload = this.message.payload;
      p = Buffer.allocUnsafe(header.length + payload.length);
      header.copy(p, 0);
      payload.copy(p, header.length);
      this.#packets[i] = p;
    }
    return p;
  }
}

/** Up to this payload size a QoS 1/2 delivery copies the whole packet; above it, only the header. */
export const COPY_PAYLOAD_LIMIT = 1024;

/** A copy of a cached QoS 1/2 PUBLISH with its packet id set. */
export function withPacketId(packet: Buffer, packetId: number): Buffer {
  const copy = Buffer.allocUnsafe(packet.length);
  packet.copy(copy, 0);
  copy.writeUInt16BE(packetId, publishPacketIdOffset(copy));
  return copy;
}
