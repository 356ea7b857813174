/**
 * One client connection: the connect-first state machine, strictly ordered packet processing, keepalive
 * bookkeeping, inbound rate limits and the outbound encoders. Packet handlers live in handlers/, one per
 * packet type; they may answer asynchronously, and while one does, this connection's later packets wait
 * (the socket is paused) while other connections go on.
 */
import { ReasonCode, connackCodeForV3, type DisconnectReason, type Message, type QoS } from '@rmqtt-ts/plugin-api';
import { Decoder, DecodeError, encode, encodePublishHeader } from '../codec/index.js';
import type { Packet, Properties, ProtocolVersion } from '../codec/packets.js';
import type { ListenerConfig } from '../config/index.js';
import { COPY_PAYLOAD_LIMIT, EncodeCache, messageProperties, withPacketId } from '../delivery/encode-cache.js';
import { TokenBucket } from '../delivery/rate.js';
import type { Kernel } from '../kernel.js';
import type { Transport } from '../listener/transport.js';
import type { Session } from '../session/session.js';
import { C } from '../metrics/metrics.js';
import { dispatchPacket } from './dispatch.js';

/** Above this many bytes waiting in the socket, deliveries queue in the session instead. */
const CONGESTION_BYTES = 256 * 1024;
/**
 * Inbound message steps (PUBLISH, and PUBREL: a QoS 2 message costs two) handled in one go before
 * yielding to other connections. Acknowledgements of deliveries are not counted: they only free
 * capacity. Small enough that subscribers' acks come round often (measured with the benchmark's
 * QoS 1 and 2 cases).
 */
const PUBLISH_BUDGET = 24;
/** Buffered bytes above which a yielding connection also stops reading. */
const YIELD_PAUSE_BYTES = 64 * 1024;
/** Largest packet the MQTT wire format can carry. */
const MAX_PACKET = 268_435_460;

export type ConnectionState = 'handshake' | 'auth' | 'connected' | 'closed';

export class Connection {
  readonly kernel: Kernel;
  readonly listener: ListenerConfig;
  readonly transport: Transport;
  readonly decoder: Decoder;
  readonly openedAt: number;
  state: ConnectionState = 'handshake';
  version: ProtocolVersion = 4;
  session: Session | null = null;
  clientId = '';
  /** Keepalive timeout in ms (0 = none): keepalive × keepalive_backoff × 2 [MQTT-3.1.2-24]. */
  keepaliveTimeoutMs = 0;
  /** Keepalive in force (seconds), after clamping. */
  keepalive = 0;
  lastRx: number;
  congested = false;
  closed = false;
  /** The client's Maximum Packet Size (outbound limit) [MQTT-3.1.2-25]. */
  maxOutPacket = MAX_PACKET;
  /** Request Problem Information: 0 suppresses Reason Strings and User Properties [MQTT-3.1.2-29]. */
  problemInfo = true;
  /** Inbound topic aliases (client → broker). */
  inAliases: Map<number, string> | null = null;
  /** Outbound topic aliases the broker assigned (broker → client), up to the client's maximum. */
  outAliases: Map<string, number> | null = null;
  outAliasMax = 0;
  /** The enhanced-authentication method of this connection, if it used one. */
  authMethod: string | undefined;
  /** A re-authentication exchange (AUTH 0x19, then 0x18 steps) is under way [MQTT-4.12.1-?]. */
  reauthenticating = false;
  /** Pending state of a CONNECT that is waiting for an AUTH exchange to finish. */
  pendingConnect: unknown;
  /** Why the connection ended (first reason wins). */
  closeReason: DisconnectReason | undefined;
  /** Set when the client ended with DISCONNECT (no will unless 0x04). */
  willSuppressed = false;
  /** Session Expiry Interval the CONNECT asked for (v5) — DISCONNECT may not raise it from 0 [MQTT-3.14.2-2]. */
  connectSessionExpiry = 0;
  /** Client's Receive Maximum (v5), 65535 when absent. */
  receiveMaximum = 65535;
  /** QoS 1 PUBLISHes received and not yet acknowledged (inbound flow control). */
  pendingQos1 = 0;
  /**
   * QoS 2 packet ids received on this connection and not yet released. The client's send quota starts
   * afresh on each connection [MQTT-4.9.0-?], so ids left from an earlier one do not count against it.
   */
  #inboundQos2: Set<number> | null = null;
  get inboundQos2(): ReadonlySet<number> {
    return this.#inboundQos2 ?? NO_IDS;
  }
  addInboundQos2(packetId: number): void {
    (this.#inboundQos2 ??= new Set()).add(packetId);
  }
  deleteInboundQos2(packetId: number): void {
    this.#inboundQos2?.delete(packetId);
  }

  #busy = false;
  #pausedForRate = false;
  #firstChunk: Buffer | undefined;
  #msgLimiter: TokenBucket | null;
  #byteLimiter: TokenBucket | null;

  constructor(kernel: Kernel, listener: ListenerConfig, transport: Transport, acceptedAt = Date.now()) {
    this.kernel = kernel;
    this.listener = listener;
    this.transport = transport;
    this.decoder = new Decoder({ maxPacketSize: listener.maxPacketSize });
    this.openedAt = acceptedAt;
    this.lastRx = Date.now();
    const mr = listener.maxMessageRate;
    const br = listener.maxByteRate;
    this.#msgLimiter = mr ? new TokenBucket(mr.burst, mr.periodMs) : null;
    this.#byteLimiter = br ? new TokenBucket(br.burst, br.periodMs) : null;
  }

  /** Start reading. */
  start(): void {
    this.transport.bind(this);
    this.kernel.connections.add(this);
  }

  /** Bytes that arrived before the connection took over the socket (after a PROXY header). */
  feed(chunk: Buffer): void {
    this.onData(chunk);
  }

  // The transport calls these three (TransportEvents) — methods, not per-connection closures.
  onData(chunk: Buffer): void {
    if (this.closed) return;
    this.lastRx = Date.now();
    if (this.state === 'handshake' && this.#firstChunk === undefined) this.#firstChunk = chunk;
    if (this.#byteLimiter !== null) {
      const wait = this.#byteLimiter.take(chunk.length, this.lastRx);
      if (wait > 0) this.#pauseForRate(wait);
    }
    this.decoder.push(chunk);
    if (this.#busy && this.decoder.buffered > YIELD_PAUSE_BYTES) this.#pauseReads();
    this.#process();
  }

  onDrain(): void {
    if (this.closed) return;
    this.congested = false;
    this.session?.out.drain();
  }

  onClose(): void {
    if (this.closed) return;
    this.teardown({ code: ReasonCode.UnspecifiedError, by: 'client', message: 'connection closed by peer' }, true);
  }

  /**
   * Process buffered packets in order until one is asynchronous or the buffer is empty. After
   * PUBLISH_BUDGET publishes the rest waits for the next turn of the event loop (reads paused), so one
   * flooding publisher cannot hold the loop while its subscribers' acknowledgements wait.
   */
  #process(): void {
    let budget = PUBLISH_BUDGET;
    while (!this.#busy && !this.closed && !this.#pausedForRate) {
      if (budget <= 0) {
        if (this.decoder.buffered === 0) return;
        this.#yield();
        return;
      }
      let packet: Packet | null;
      try {
        packet = this.decoder.next();
      } catch (err) {
        this.#decodeFailed(err);
        return;
      }
      if (packet === null) return;
      if (packet.type === 1) this.#firstChunk = undefined;
      if (this.state === 'handshake' && packet.type !== 1) {
        // [MQTT-3.1.0-1] the first packet must be CONNECT: close without a word
        this.kernel.metrics.counters[C['client.protocol.error']]!++;
        this.teardown({ code: ReasonCode.ProtocolError, by: 'server', message: 'first packet was not CONNECT' }, true);
        return;
      }
      if (packet.type === 3) {
        // a QoS 2 message is three steps for its subscribers' windows to absorb (PUBLISH, PUBREC, PUBCOMP)
        budget -= packet.qos === 2 ? 2 : 1;
        if (this.#msgLimiter !== null) {
          const wait = this.#msgLimiter.take(1);
          if (wait > 0) this.#pauseForRate(wait);
        }
      } else if (packet.type === 6) {
        budget--;
      }
      let pending: void | Promise<void>;
      try {
        pending = dispatchPacket(this, packet);
      } catch (err) {
        this.handlerFailed(err);
        return;
      }
      if (pending !== undefined) {
        // reads go on while the handler waits (the next packets are then at hand when it is done),
        // unless a lot is buffered already
        this.#busy = true;
        if (this.decoder.buffered > YIELD_PAUSE_BYTES) this.#pauseReads();
        pending.then(
          () => this.#afterAsync(),
          (err: unknown) => this.handlerFailed(err),
        );
        return;
      }
    }
  }

  /**
   * Continue on the next turn of the event loop — after its poll phase, where subscribers'
   * acknowledgements are read: an immediate scheduled now would run in this turn's check phase and give
   * publishers two batches per turn to the subscribers' one. Reads go on meanwhile (the bytes wait in the
   * decoder) unless a lot is buffered already: pausing and resuming a socket costs system calls.
   */
  #yield(): void {
    this.#busy = true;
    if (this.decoder.buffered > YIELD_PAUSE_BYTES) this.#pauseReads();
    setImmediate(nextTurn, afterYield, this);
  }

  /** The next turn after a yield: go on with the buffered packets. */
  resumeAfterYield(): void {
    // reads may have been paused meanwhile (more than YIELD_PAUSE_BYTES arrived): #afterAsync resumes them
    this.#afterAsync();
  }

  #afterAsync(): void {
    this.#busy = false;
    if (this.closed) return;
    if (!this.#pausedForRate) this.#resumeReads();
    this.#process();
  }

  /** Reads paused for backpressure (not for rate: that has its own flag). */
  #readsPaused = false;

  #pauseReads(): void {
    if (this.#readsPaused) return;
    this.#readsPaused = true;
    this.transport.pause();
  }

  #resumeReads(): void {
    if (!this.#readsPaused) return;
    this.#readsPaused = false;
    this.transport.resume();
  }

  #pauseForRate(ms: number): void {
    if (this.#pausedForRate) return;
    this.#pausedForRate = true;
    this.kernel.metrics.counters[C['client.rate_limited']]!++;
    this.transport.pause();
    setTimeout(() => {
      this.#pausedForRate = false;
      if (this.closed) return;
      if (!this.#busy) {
        this.#readsPaused = false;
        this.transport.resume();
        this.#process();
      } else {
        // the transport stays paused until the handler is done: #afterAsync resumes it
        this.#readsPaused = true;
      }
    }, ms).unref();
  }

  handlerFailed(err: unknown): void {
    this.#busy = false;
    if (this.closed) return;
    if (err instanceof DecodeError) {
      this.protocolFailure(err.reasonCode, err.message);
      return;
    }
    this.kernel.logger.error({ err, clientId: this.clientId }, 'packet handler failed');
    this.protocolFailure(ReasonCode.UnspecifiedError, 'internal error');
  }

  #decodeFailed(err: unknown): void {
    const code = err instanceof DecodeError ? err.reasonCode : ReasonCode.MalformedPacket;
    const message = err instanceof Error ? err.message : String(err);
    if (this.state === 'handshake') {
      this.#refuseMalformedConnect(code, message);
      return;
    }
    this.protocolFailure(code, message);
  }

  /**
   * A bad first packet. A CONNECT we could not decode is answered with a CONNACK in the version it
   * claims (0x84 / 0x01 for an unknown version); anything else closes silently [MQTT-3.1.0-1].
   */
  #refuseMalformedConnect(code: number, message: string): void {
    this.kernel.metrics.counters[C['client.protocol.error']]!++;
    const first = this.#firstChunk;
    if (first !== undefined && first[0] === 0x10) {
      const level = sniffProtocolLevel(first);
      if (code === ReasonCode.UnsupportedProtocolVersion || (level !== 3 && level !== 4 && level !== 5)) {
        // unknown level: the 3.1.1 CONNACK format, understood by every version [MQTT-3.1.2-2]
        this.version = 4;
        this.transport.write(Buffer.from([0x20, 0x02, 0x00, 0x01]));
      } else {
        this.version = level;
        this.sendConnack(false, code, NO_PROPS);
      }
    }
    this.teardown({ code, by: 'server', message }, true);
  }

  /**
   * End the connection for a protocol violation: after CONNACK a v5 client gets DISCONNECT with the
   * reason code; before it, a CONNACK with the code; a v3 client is simply closed.
   */
  protocolFailure(code: number, message: string): void {
    if (this.closed) return;
    this.kernel.metrics.counters[C['client.protocol.error']]!++;
    this.kernel.logger.debug({ clientId: this.clientId, code, reason: message }, 'closing connection');
    if (this.state === 'handshake' || this.state === 'auth') {
      this.sendConnack(false, code, NO_PROPS);
      this.teardown({ code, by: 'server', message }, true);
      return;
    }
    this.disconnect(code, message);
  }

  /** Server-initiated close after CONNACK: DISCONNECT (v5) written before the socket closes. */
  disconnect(code: number, message: string, abnormal = true): void {
    if (this.closed) return;
    if (this.state === 'connected' && this.version === 5) {
      this.sendPacket({ type: 14, reasonCode: code, properties: this.reasonProps(code, message, true) });
    }
    this.teardown({ code, by: 'server', message }, abnormal);
  }

  /**
   * Close and release everything once. `abnormal` decides the will: published unless the client ended
   * with a normal DISCONNECT.
   */
  teardown(reason: DisconnectReason, abnormal: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason ??= reason;
    const prev = this.state;
    this.state = 'closed';
    this.transport.end();
    this.kernel.connections.remove(this, prev);
    if (prev === 'connected' && this.session !== null) {
      this.kernel.sessions.connectionClosed(this, this.closeReason, abnormal && !this.willSuppressed);
    }
  }

  // ---- output ----

  sendPacket(packet: Packet): void {
    if (this.closed) return;
    this.transport.write(encode(packet, this.version));
  }

  /**
   * CONNACK with an MQTT 5 reason code; a 3.x client gets the matching return code, and nothing at all
   * for a malformed packet or protocol error (3.1.1 has no code for them: the connection just closes).
   */
  sendConnack(sessionPresent: boolean, reasonCode: number, properties: Properties): void {
    if (this.closed) return;
    if (this.version !== 5) {
      if (reasonCode === ReasonCode.MalformedPacket || reasonCode === ReasonCode.ProtocolError) return;
      if (reasonCode === 0) {
        // the common answer, encoded once
        this.transport.write(sessionPresent ? CONNACK_V3_PRESENT : CONNACK_V3_NEW);
        return;
      }
      reasonCode = connackCodeForV3(reasonCode);
      properties = NO_PROPS;
    }
    this.transport.write(encode({ type: 2, sessionPresent, reasonCode, properties }, this.version));
  }

  /** PUBACK / PUBREC / PUBREL / PUBCOMP. */
  sendAck(type: 4 | 5 | 6 | 7, packetId: number, reasonCode: number, reasonString?: string): void {
    if (this.closed) return;
    const properties = reasonString !== undefined ? this.reasonProps(reasonCode, reasonString, false) : NO_PROPS;
    this.transport.write(encode({ type, packetId, reasonCode: this.version === 5 ? reasonCode : 0, properties }, this.version));
  }

  /**
   * An acknowledgement that must not go out before the session changes recorded since `since` are
   * written (durable session store): sent now when nothing is waiting, else once written — the
   * returned promise holds this connection's later packets meanwhile.
   */
  sendAckWhenWritten(type: 4 | 5 | 6 | 7, packetId: number, reasonCode: number, since: number): void | Promise<void> {
    const w = this.#unwritten(since);
    if (w === undefined) {
      this.sendAck(type, packetId, reasonCode);
      return;
    }
    return w.then(() => this.sendAck(type, packetId, reasonCode));
  }

  /** `send` now, or once the session changes recorded since `since` are written (see sendAckWhenWritten). */
  afterWritten(since: number, send: () => void | Promise<void>): void | Promise<void> {
    const w = this.#unwritten(since);
    if (w === undefined) return send();
    return w.then(() => (this.closed ? undefined : send()));
  }

  #unwritten(since: number): Promise<void> | undefined {
    const journal = this.kernel.journal;
    return journal.seq === since ? undefined : journal.written();
  }

  /**
   * Reason String for a failure code, unless the client asked for no problem information
   * [MQTT-3.1.2-29] (CONNACK and DISCONNECT always carry it) or it would exceed the client's maximum.
   */
  reasonProps(code: number, text: string, always: boolean): Properties {
    if (code < 0x80 || this.version !== 5 || (!always && !this.problemInfo)) return NO_PROPS;
    if (text.length + 16 > this.maxOutPacket) return NO_PROPS;
    return { reasonString: text };
  }

  /**
   * Write a PUBLISH. Returns false when it would exceed the client's Maximum Packet Size: the message is
   * then dropped for this client, not the connection [MQTT-3.1.2-25].
   */
  sendPublish(
    msg: Message,
    qos: QoS,
    retain: boolean,
    dup: boolean,
    packetId: number,
    subIds: readonly number[] | undefined,
    cache: EncodeCache | null,
    now: number,
  ): boolean {
    const v = this.version;
    if (!dup && (v !== 5 || (subIds === undefined && this.outAliasMax === 0))) {
      const c = cache ?? new EncodeCache(msg, now);
      if (qos === 0 || msg.payload.length <= COPY_PAYLOAD_LIMIT) {
        const packet = c.packet(v, qos, retain);
        if (packet.length > this.maxOutPacket) return false;
        this.transport.write(qos === 0 ? packet : withPacketId(packet, packetId));
      } else {
        // a large payload is shared by every subscriber: only the header is copied for its packet id
        const header = c.header(v, qos, retain);
        if (header.length + msg.payload.length > this.maxOutPacket) return false;
        this.transport.write(withPacketId(header, packetId));
        this.transport.write(msg.payload);
      }
    } else {
      let props = v === 5 ? (cache !== null ? cache.properties() : messageProperties(msg, now)) : undefined;
      let topic = msg.topic;
      if (v === 5) {
        if (subIds !== undefined && subIds.length > 0) props = { ...props, subscriptionIdentifiers: subIds as number[] };
        if (this.outAliasMax > 0) {
          const aliases = (this.outAliases ??= new Map());
          const known = aliases.get(topic);
          if (known !== undefined) {
            props = { ...props, topicAlias: known };
            topic = '';
          } else if (aliases.size < this.outAliasMax) {
            const alias = aliases.size + 1;
            props = { ...props, topicAlias: alias };
            // the size check below must not leave an alias the client never learned
            const header = encodePublishHeader(topic, qos, retain, dup, packetId, props, msg.payload.length, v);
            if (header.length + msg.payload.length > this.maxOutPacket) return false;
            aliases.set(topic, alias);
            this.transport.write(header);
            this.transport.write(msg.payload);
            this.#checkCongestion();
            return true;
          }
        }
      }
      const header = encodePublishHeader(topic, qos, retain, dup, packetId, props, msg.payload.length, v);
      if (header.length + msg.payload.length > this.maxOutPacket) return false;
      this.transport.write(header);
      this.transport.write(msg.payload);
    }
    this.#checkCongestion();
    return true;
  }

  #checkCongestion(): void {
    if (!this.congested && this.transport.writableLength > CONGESTION_BYTES) this.congested = true;
  }
}

const NO_PROPS: Properties = Object.freeze({}) as Properties;

/** From this turn's check phase, schedule into the next turn's. */
function nextTurn(fn: (conn: Connection) => void, conn: Connection): void {
  setImmediate(fn, conn);
}

function afterYield(conn: Connection): void {
  conn.resumeAfterYield();
}
const NO_IDS: ReadonlySet<number> = new Set();
const CONNACK_V3_NEW = Buffer.from([0x20, 0x02, 0x00, 0x00]);
const CONNACK_V3_PRESENT = Buffer.from([0x20, 0x02, 0x01, 0x00]);

/** The protocol level byte of a CONNECT in its first bytes, or 0 if they do not reach it. */
function sniffProtocolLevel(buf: Buffer): number {
  let i = 1;
  for (let k = 0; k < 4 && i < buf.length; k++) {
    if ((buf[i++]! & 0x80) === 0) break;
  }
  if (i + 2 > buf.length) return 0;
  const nameLen = buf.readUInt16BE(i);
  const at = i + 2 + nameLen;
  return at < buf.length ? buf[at]! : 0;
}
