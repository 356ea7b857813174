import { DecodeError, DecodeReason, malformed } from './decode-error.js';
import { PacketType } from './packets.js';
import type { AckPacket, Packet } from './packets.js';
import { parseAck, parsePublish, parseSuback, parseSubscribe, parseUnsuback, parseUnsubscribe } from './parse-messages.js';
import { parseAuth, parseConnack, parseConnect, parseDisconnect } from './parse-session.js';
import { Reader } from './reader.js';

export interface DecoderOptions {
  /** Largest whole packet (fixed header + remaining) accepted, in bytes; 0 = no limit. */
  maxPacketSize: number;
}

/** 1 type byte + 4 length bytes + the largest Remaining Length: the most a packet can be. */
const NO_LIMIT = 1 + 4 + 268_435_455;
const EMPTY = Buffer.alloc(0);

const PACKET_NAMES = [
  'packet type 0',
  'CONNECT',
  'CONNACK',
  'PUBLISH',
  'PUBACK',
  'PUBREC',
  'PUBREL',
  'PUBCOMP',
  'SUBSCRIBE',
  'SUBACK',
  'UNSUBSCRIBE',
  'UNSUBACK',
  'PINGREQ',
  'PINGRESP',
  'DISCONNECT',
  'AUTH',
] as const;

/** The fixed-header flag nibble each type must carry [MQTT-2.1.3-1]; PUBLISH (-1) uses its flags. */
const REQUIRED_FLAGS = [0, 0, 0, -1, 0, 0, 0b0010, 0, 0b0010, 0, 0b0010, 0, 0, 0, 0, 0] as const;
const DUP = 0b1000;
/** One reader for every decoder: parsing is synchronous and never re-entered. */
const READER = new Reader();

/**
 * Streaming MQTT decoder: bytes go in with push(), packets come out one at a time with next(), so the
 * connection can stop between packets (while an async hook runs) and resume later without the decoder
 * running ahead. Chunks are kept as they arrived; bytes are copied only when one packet spans chunks.
 */
export class Decoder {
  maxPacketSize: number;
  /** 0 until a CONNECT is decoded, then its level. A client-side user sets it by hand. */
  protocolVersion: 0 | 3 | 4 | 5 = 0;

  /** Chunk being read, from #offset on. Invariant: when it is used up, #queue is empty. */
  #current: Buffer = EMPTY;
  #offset = 0;
  #queue: Buffer[] = [];
  #buffered = 0;
  /**
   * Set once this decoder has read a CONNECT, i.e. it reads what a client sends (a client-side decoder
   * never sees one). Subscription Identifiers in a PUBLISH depend on the direction [MQTT-3.3.4-4, -6].
   */
  #readsClient = false;

  constructor(options: DecoderOptions) {
    this.maxPacketSize = options.maxPacketSize;
  }

  /** Bytes held, parsed or not yet. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Appends bytes; parsing waits for next(). */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.#offset >= this.#current.length) {
      this.#current = chunk;
      this.#offset = 0;
    } else {
      this.#queue.push(chunk);
    }
    this.#buffered += chunk.length;
  }

  /**
   * The next complete packet, or null when more bytes are needed. Throws DecodeError; the fixed header
   * is checked as soon as it is readable, so an oversized packet is refused before its body arrives.
   */
  next(): Packet | null {
    const available = this.#buffered;
    if (available === 0) return null;
    const first = this.#byteAt(0);
    const type = first >> 4;
    const flags = first & 0x0f;
    this.#checkFixedHeader(type, flags);

    let remainingLength = 0;
    let multiplier = 1;
    let headerLength = 1;
    for (;;) {
      if (headerLength >= available) return null;
      const byte = this.#byteAt(headerLength++);
      remainingLength += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) break;
      if (headerLength === 5) throw malformed(`${PACKET_NAMES[type]} Remaining Length is longer than 4 bytes`);
      multiplier *= 128;
    }

    const total = headerLength + remainingLength;
    const limit = this.maxPacketSize > 0 ? this.maxPacketSize : NO_LIMIT;
    // Refused from the fixed header alone, so a client cannot make us buffer a body we will not take
    // [MQTT-3.2.2-15].
    if (total > limit) {
      throw new DecodeError(
        DecodeReason.PACKET_TOO_LARGE,
        `${PACKET_NAMES[type]} of ${total} bytes exceeds the maximum packet size of ${limit} bytes`,
      );
    }
    if (available < total) return null;

    const start = this.#contiguous(total);
    const packet = this.#parse(type, flags, start + headerLength, start + total);
    this.#consume(total);
    return packet;
  }

  #checkFixedHeader(type: number, flags: number): void {
    if (type === 0) throw malformed('packet type 0 is reserved');
    if (type === PacketType.PUBLISH) {
      const qos = (flags >> 1) & 0x03;
      if (qos === 3) throw malformed('PUBLISH has QoS 3 [MQTT-3.3.1-4]');
      if (qos === 0 && (flags & DUP) !== 0) throw malformed('PUBLISH has DUP set with QoS 0 [MQTT-3.3.1-2]');
      return;
    }
    if (type === PacketType.AUTH && this.protocolVersion !== 5) {
      throw malformed('AUTH is an MQTT 5 packet and the connection is not MQTT 5');
    }
    const required = REQUIRED_FLAGS[type]!;
    if (flags === required) return;
    // MQTT 3.1 sets DUP on a re-sent PUBREL, SUBSCRIBE or UNSUBSCRIBE (they were QoS 1 packets there).
    if (this.protocolVersion === 3 && required === 0b0010 && flags === (required | DUP)) return;
    throw malformed(`${PACKET_NAMES[type]} fixed header flags are 0b${flags.toString(2).padStart(4, '0')} [MQTT-2.1.3-1]`);
  }

  #parse(type: number, flags: number, start: number, end: number): Packet {
    const reader = READER;
    reader.reset(this.#current, start, end, PACKET_NAMES[type]!);
    const version = this.protocolVersion;
    let packet: Packet;
    switch (type) {
      case PacketType.CONNECT:
        packet = parseConnect(reader);
        this.protocolVersion = packet.protocolVersion;
        this.#readsClient = true;
        break;
      case PacketType.CONNACK:
        packet = parseConnack(reader, version);
        break;
      case PacketType.PUBLISH:
        packet = parsePublish(reader, flags, version, this.#readsClient);
        break;
      case PacketType.PUBACK:
      case PacketType.PUBREC:
      case PacketType.PUBREL:
      case PacketType.PUBCOMP:
        packet = parseAck(reader, type as AckPacket['type'], version);
        break;
      case PacketType.SUBSCRIBE:
        packet = parseSubscribe(reader, version);
        break;
      case PacketType.SUBACK:
        packet = parseSuback(reader, version);
        break;
      case PacketType.UNSUBSCRIBE:
        packet = parseUnsubscribe(reader, version);
        break;
      case PacketType.UNSUBACK:
        packet = parseUnsuback(reader, version);
        break;
      case PacketType.PINGREQ:
      case PacketType.PINGRESP:
        reader.expectEnd();
        packet = { type };
        break;
      case PacketType.DISCONNECT:
        packet = parseDisconnect(reader, version);
        break;
      default:
        packet = parseAuth(reader);
        break;
    }
    reader.release();
    return packet;
  }

  /** Byte `index` past the read offset, looking into queued chunks while the fixed header spans them. */
  #byteAt(index: number): number {
    let i = this.#offset + index;
    if (i < this.#current.length) return this.#current[i]!;
    i -= this.#current.length;
    const queue = this.#queue;
    for (let k = 0; k < queue.length; k++) {
      const chunk = queue[k]!;
      if (i < chunk.length) return chunk[i]!;
      i -= chunk.length;
    }
    return 0; // callers stay below #buffered, so this is never reached
  }

  /**
   * Makes the next `total` bytes contiguous in #current and returns where they start. Only a packet
   * that spans chunks is copied, and only its own bytes: the tail of the last chunk stays queued.
   */
  #contiguous(total: number): number {
    const current = this.#current;
    const offset = this.#offset;
    const inCurrent = current.length - offset;
    if (inCurrent >= total) return offset;
    const merged = Buffer.allocUnsafe(total);
    current.copy(merged, 0, offset);
    let filled = inCurrent;
    const queue = this.#queue;
    let used = 0;
    while (filled < total) {
      const chunk = queue[used]!;
      const take = Math.min(chunk.length, total - filled);
      chunk.copy(merged, filled, 0, take);
      filled += take;
      if (take < chunk.length) {
        queue[used] = chunk.subarray(take);
        break;
      }
      used++;
    }
    queue.splice(0, used);
    this.#current = merged;
    this.#offset = 0;
    return 0;
  }

  #consume(total: number): void {
    this.#offset += total;
    this.#buffered -= total;
    if (this.#offset < this.#current.length) return;
    this.#current = this.#queue.length > 0 ? this.#queue.shift()! : EMPTY;
    this.#offset = 0;
  }
}
