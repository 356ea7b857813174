/**
 * A session's outbound delivery: the inflight window (QoS 1/2 sent and not yet completed), packet-id
 * allocation, the queue behind the window, its drain rate limit, retransmission on resume (and on a
 * timer for MQTT 3.x only [MQTT-4.4.0-1]).
 */
import type { InflightSnapshot, DeliverySnapshot, Message, QoS } from '@rmqtt-ts/plugin-api';
import type { Kernel } from '../kernel.js';
import type { Session } from '../session/session.js';
import type { EncodeCache } from './encode-cache.js';
import { DeliveryQueue, QueuedDelivery } from './queue.js';
import { TokenBucket } from './rate.js';

export class InflightEntry {
  constructor(
    readonly packetId: number,
    readonly message: Message,
    readonly qos: 1 | 2,
    readonly retain: boolean,
    readonly subscriptionIds: readonly number[] | undefined,
    public state: 'publish' | 'pubrel',
    public sentAt: number,
  ) {}
}

const EMPTY_IDS: readonly number[] = Object.freeze([]);
const NO_INFLIGHT: ReadonlyMap<number, InflightEntry> = new Map<number, InflightEntry>();

export class Outbound {
  /** Made on the first QoS 1/2 delivery: many sessions never have one. */
  #inflight: Map<number, InflightEntry> | null = null;
  readonly queue = new DeliveryQueue();
  /** min(listener max_inflight, client Receive Maximum); set when a connection attaches. */
  window: number;
  #nextId = 1;
  /** Inflight entries of a resumed session not re-sent yet: the client's Receive Maximum allowed fewer. */
  #resend: InflightEntry[] = [];
  #drainLimiter: TokenBucket | null = null;
  #drainTimer: NodeJS.Timeout | undefined;
  readonly #session: Session;
  readonly #k: Kernel;

  constructor(session: Session, kernel: Kernel) {
    this.#session = session;
    this.#k = kernel;
    this.window = session.listener.maxInflight;
    const r = session.listener.mqueueRateLimit;
    if (r) this.#drainLimiter = new TokenBucket(r.burst, r.periodMs);
  }

  /**
   * Deliver one message to this session: written at once when the connection can take it (the queue is
   * empty, the socket not backed up, a window slot free), queued otherwise.
   */
  deliver(msg: Message, qos: QoS, retain: boolean, subIds: readonly number[] | undefined, cache: EncodeCache | null, now: number): void {
    if (this.#expired(msg, now)) {
      this.#k.publisher.dropped(this.#session.clientId, msg, 'expired');
      return;
    }
    const conn = this.#session.conn;
    if (conn !== null && this.queue.length === 0 && !conn.congested && (qos === 0 || this.inflight.size < this.window)) {
      this.#send(msg, qos, retain, subIds, cache, now, false);
      return;
    }
    this.#enqueue(new QueuedDelivery(msg, qos, retain, subIds));
  }

  /** Past its expiry, or declared expired by a message.expiryCheck handler. */
  #expired(msg: Message, now: number): boolean {
    if (msg.expiresAt !== 0 && msg.expiresAt <= now) return true;
    const hooks = this.#k.hooks;
    if (!hooks.active['message.expiryCheck']) return false;
    return hooks.decide('message.expiryCheck', { clientId: this.#session.clientId, message: msg, now }, undefined) === true;
  }

  #enqueue(d: QueuedDelivery): void {
    const s = this.#session;
    const max = s.listener.maxMqueueLen;
    if (this.queue.length >= max) {
      // full: a new QoS 0 message is dropped; for QoS 1/2 the oldest queued one makes room
      if (d.qos === 0 || max === 0) {
        this.#k.publisher.dropped(s.clientId, d.message, 'queue_full');
        return;
      }
      const old = this.queue.shift()!;
      this.#k.metrics.gauges.message_queues.dec();
      if (s.persistent) this.#k.journal.record({ op: 'dequeue', clientId: s.clientId });
      this.#k.publisher.dropped(s.clientId, old.message, 'queue_full');
    }
    this.queue.push(d);
    this.#k.metrics.gauges.message_queues.inc();
    if (s.persistent) {
      this.#k.journal.record({ op: 'enqueue', clientId: s.clientId, delivery: toDeliverySnapshot(d) });
    }
    if (s.conn === null && this.#k.hooks.active['offline.message']) {
      this.#k.hooks.observe('offline.message', { clientId: s.clientId, message: d.message });
    }
  }

  #send(msg: Message, qos: QoS, retain: boolean, subIds: readonly number[] | undefined, cache: EncodeCache | null, now: number, fromQueue: boolean): void {
    const s = this.#session;
    const conn = s.conn!;
    if (qos === 0) {
      if (conn.sendPublish(msg, 0, retain, false, 0, subIds, cache, now)) this.#k.publisher.delivered(s, msg, 0);
      else this.#k.publisher.dropped(s.clientId, msg, 'packet_too_large');
      if (fromQueue && s.persistent) this.#k.journal.record({ op: 'dequeue', clientId: s.clientId });
      return;
    }
    const id = this.#allocateId();
    if (!conn.sendPublish(msg, qos, retain, false, id, subIds, cache, now)) {
      this.#k.publisher.dropped(s.clientId, msg, 'packet_too_large');
      if (fromQueue && s.persistent) this.#k.journal.record({ op: 'dequeue', clientId: s.clientId });
      return;
    }
    const e = new InflightEntry(id, msg, qos, retain, subIds, 'publish', now);
    (this.#inflight ??= new Map()).set(id, e);
    this.#k.metrics.gauges.out_inflights.inc();
    if (s.persistent) this.#k.journal.record({ op: 'inflight', clientId: s.clientId, delivery: toInflightSnapshot(e), fromQueue });
    this.#k.publisher.delivered(s, msg, qos);
  }

  /** Sent QoS 1/2 messages not yet completed, by packet id, in send order. */
  get inflight(): ReadonlyMap<number, InflightEntry> {
    return this.#inflight ?? NO_INFLIGHT;
  }

  #allocateId(): number {
    let id = this.#nextId;
    while (this.inflight.has(id)) id = id === 0xffff ? 1 : id + 1;
    this.#nextId = id === 0xffff ? 1 : id + 1;
    return id;
  }

  /** PUBACK from the client. */
  onPuback(packetId: number): void {
    const e = this.inflight.get(packetId);
    if (e === undefined || e.qos !== 1) return; // unknown or stale ack: nothing to complete
    this.#complete(e);
  }

  /**
   * PUBREC from the client: answer PUBREL, or end the exchange on a failure code. For a persistent
   * session the PUBREL waits until its new state is written: a restarted broker must re-send PUBREL,
   * not the PUBLISH the client already passed on.
   */
  onPubrec(packetId: number, reasonCode: number): void | Promise<void> {
    const conn = this.#session.conn;
    const e = this.inflight.get(packetId);
    if (e === undefined || e.qos !== 2) {
      // [MQTT-4.3.3-?] tell the client the id is not known (v5), so it can release its state
      conn?.sendAck(6, packetId, 0x92);
      return;
    }
    if (reasonCode >= 0x80) {
      this.#complete(e);
      return;
    }
    if (e.state === 'publish') {
      e.state = 'pubrel';
      e.sentAt = Date.now();
      const s = this.#session;
      if (s.persistent) {
        const since = this.#k.journal.seq;
        this.#k.journal.record({ op: 'inflight', clientId: s.clientId, delivery: toInflightSnapshot(e), fromQueue: false });
        return conn?.sendAckWhenWritten(6, packetId, 0, since);
      }
    }
    conn?.sendAck(6, packetId, 0);
  }

  /** PUBCOMP from the client. */
  onPubcomp(packetId: number): void {
    const e = this.inflight.get(packetId);
    if (e === undefined || e.state !== 'pubrel') return;
    this.#complete(e);
  }

  #complete(e: InflightEntry): void {
    const s = this.#session;
    if (this.#resend.length > 0) {
      const i = this.#resend.indexOf(e);
      if (i >= 0) this.#resend.splice(i, 1);
    }
    this.#inflight!.delete(e.packetId);
    this.#k.metrics.gauges.out_inflights.dec();
    if (s.persistent) this.#k.journal.record({ op: 'complete', clientId: s.clientId, packetId: e.packetId });
    this.#k.publisher.acked(s, e.message);
    if (this.#resend.length > 0) this.#resendNext();
    else if (this.queue.length > 0) this.drain();
  }

  /** Re-send held-back inflight entries as the window frees up, before anything queued. */
  #resendNext(): void {
    const conn = this.#session.conn;
    if (conn === null) return;
    const now = Date.now();
    while (this.#resend.length > 0 && this.inflight.size - this.#resend.length < this.window) {
      const e = this.#resend.shift()!;
      e.sentAt = now;
      this.#resendOne(conn, e, now);
    }
    if (this.#resend.length === 0 && this.queue.length > 0) this.drain();
  }

  /** Send queued messages while the connection, the window and the drain rate allow. */
  drain(): void {
    const s = this.#session;
    const conn = s.conn;
    if (conn === null || this.#drainTimer !== undefined || this.#resend.length > 0) return;
    const limiter = this.#drainLimiter;
    let now = Date.now();
    while (this.queue.length > 0 && !conn.closed && !conn.congested) {
      const d = this.queue.peek()!;
      if (d.qos > 0 && this.inflight.size >= this.window) return;
      if (limiter !== null && !limiter.tryTake(1, now)) {
        this.#drainTimer = setTimeout(resumeDrain, Math.max(1, limiter.waitFor(1, now)), this);
        this.#drainTimer.unref();
        return;
      }
      this.queue.shift();
      this.#k.metrics.gauges.message_queues.dec();
      if (this.#expired(d.message, now)) {
        if (s.persistent) this.#k.journal.record({ op: 'dequeue', clientId: s.clientId });
        this.#k.publisher.dropped(s.clientId, d.message, 'expired');
        continue;
      }
      this.#send(d.message, d.qos, d.retain, d.subscriptionIds, null, now, true);
      now = Date.now();
    }
  }

  /** The drain timer fired (rate limit): go on draining. */
  drainTimerFired(): void {
    this.#drainTimer = undefined;
    this.drain();
  }

  /**
   * Set up for a (new or resumed) connection: window size, then re-send what is inflight with DUP
   * [MQTT-4.4.0-1] — no more unacknowledged PUBLISHes at once than the client's Receive Maximum
   * [MQTT-3.3.4-9]; the rest follow as acknowledgements free the window — then drain the queue.
   */
  attach(receiveMaximum: number): void {
    const s = this.#session;
    const conn = s.conn!;
    this.window = Math.max(1, Math.min(s.listener.maxInflight, receiveMaximum));
    const r = s.listener.mqueueRateLimit;
    this.#drainLimiter = r ? new TokenBucket(r.burst, r.periodMs) : null;
    this.#resend = [];
    const now = Date.now();
    let outstanding = 0;
    for (const e of this.inflight.values()) {
      if (outstanding >= this.window) {
        this.#resend.push(e);
        continue;
      }
      outstanding++;
      e.sentAt = now;
      this.#resendOne(conn, e, now);
    }
    this.drain();
  }

  /**
   * Re-send one inflight entry with DUP. A PUBLISH that no longer fits the client's Maximum Packet
   * Size (it reconnected with a smaller one) is dropped for it [MQTT-3.1.2-25], freeing its slot.
   */
  #resendOne(conn: NonNullable<Session['conn']>, e: InflightEntry, now: number): void {
    if (e.state === 'pubrel') {
      conn.sendAck(6, e.packetId, 0);
      return;
    }
    if (conn.sendPublish(e.message, e.qos, e.retain, true, e.packetId, e.subscriptionIds, null, now)) return;
    const s = this.#session;
    this.#inflight!.delete(e.packetId);
    this.#k.metrics.gauges.out_inflights.dec();
    if (s.persistent) this.#k.journal.record({ op: 'complete', clientId: s.clientId, packetId: e.packetId });
    this.#k.publisher.dropped(s.clientId, e.message, 'packet_too_large');
  }

  detach(): void {
    this.#resend = [];
    if (this.#drainTimer !== undefined) clearTimeout(this.#drainTimer);
    this.#drainTimer = undefined;
  }

  /** MQTT 3.x only: re-send what waited longer than message_retry_interval. */
  retry(now: number, intervalMs: number): void {
    const conn = this.#session.conn;
    // a client that does not read gets nothing more: re-sending into a full socket only grows memory
    if (conn === null || intervalMs <= 0 || this.inflight.size === 0 || conn.congested) return;
    let moved: InflightEntry[] | undefined;
    for (const e of [...this.inflight.values()]) {
      if (now - e.sentAt < intervalMs) break; // entries are in send order
      e.sentAt = now;
      this.#resendOne(conn, e, now);
      if (this.inflight.has(e.packetId)) (moved ??= []).push(e);
    }
    if (moved) {
      // keep the map in send order: re-sent entries go to the back
      for (const e of moved) {
        this.#inflight!.delete(e.packetId);
        (this.#inflight ??= new Map()).set(e.packetId, e);
      }
    }
  }

  /** Drop everything (session terminated). */
  clear(): void {
    this.detach();
    this.#k.metrics.gauges.out_inflights.dec(this.inflight.size);
    this.#k.metrics.gauges.message_queues.dec(this.queue.length);
    this.#inflight = null;
    for (const d of this.queue.clear()) this.#k.publisher.dropped(this.#session.clientId, d.message, 'session_terminated');
  }

  /** Restore state from a snapshot (session taken over from another node or restored at start-up). */
  restore(inflight: readonly InflightSnapshot[], queued: readonly DeliverySnapshot[]): void {
    for (const i of inflight) {
      (this.#inflight ??= new Map()).set(i.packetId, new InflightEntry(i.packetId, i.message, i.qos as 1 | 2, i.retain, i.subscriptionIds.length ? i.subscriptionIds : undefined, i.state, 0));
      this.#k.metrics.gauges.out_inflights.inc();
    }
    for (const q of queued) {
      this.queue.push(new QueuedDelivery(q.message, q.qos, q.retain, q.subscriptionIds.length ? q.subscriptionIds : undefined));
      this.#k.metrics.gauges.message_queues.inc();
    }
  }

  inflightSnapshot(): InflightSnapshot[] {
    return [...this.inflight.values()].map(toInflightSnapshot);
  }

  queueSnapshot(): DeliverySnapshot[] {
    return this.queue.toArray().map(toDeliverySnapshot);
  }
}

function resumeDrain(out: Outbound): void {
  out.drainTimerFired();
}

function toDeliverySnapshot(d: QueuedDelivery): DeliverySnapshot {
  return { message: d.message, qos: d.qos, retain: d.retain, subscriptionIds: d.subscriptionIds ?? EMPTY_IDS };
}

function toInflightSnapshot(e: InflightEntry): InflightSnapshot {
  return { message: e.message, qos: e.qos, retain: e.retain, subscriptionIds: e.subscriptionIds ?? EMPTY_IDS, packetId: e.packetId, state: e.state };
}
