/**
 * All sessions of this node by client id: opening (new, resumed, taken over), attaching a connection
 * at CONNACK, detaching on disconnect (will, expiry), terminating.
 */
import type { ConnectInfo, DisconnectReason, SessionSnapshot, WillInfo } from '@rmqtt-ts/plugin-api';
import type { ListenerConfig } from '../config/index.js';
import type { Connection } from '../connection/connection.js';
import type { Kernel } from '../kernel.js';
import { C } from '../metrics/metrics.js';
import { NEVER_EXPIRES } from './expiry.js';
import { Session } from './session.js';
import { restoreSubscriptions, removeAllSubscriptions } from './subscriptions.js';

export interface OpenResult {
  session: Session;
  present: boolean;
}

const TAKEN_OVER: DisconnectReason = Object.freeze({ code: 0x8e, by: 'server', message: 'session taken over' });

export class SessionRegistry {
  readonly #sessions = new Map<string, Session>();
  readonly #k: Kernel;

  constructor(kernel: Kernel) {
    this.#k = kernel;
  }

  get size(): number {
    return this.#sessions.size;
  }

  get(clientId: string): Session | undefined {
    return this.#sessions.get(clientId);
  }

  values(): IterableIterator<Session> {
    return this.#sessions.values();
  }

  /** Run an extension point's call without letting its failure (sync or async) escape. */
  #safely(what: string, fn: () => unknown): void {
    try {
      const r = fn();
      if (r instanceof Promise) r.catch((err: unknown) => this.#k.logger.error({ err }, `${what} failed`));
    } catch (err) {
      this.#k.logger.error({ err }, `${what} failed`);
    }
  }

  /**
   * Find or make the session of a CONNECT: take over a connected one (DISCONNECT 0x8E to the old
   * connection), resume a persistent one unless clean start asks for a new one, or create one. A
   * session held by another node comes through the cluster transport. The session is returned
   * detached: the connection is attached only when its CONNACK goes out (attach), so nothing is
   * written to it before that.
   */
  open(conn: Connection, info: ConnectInfo, expiryInterval: number): OpenResult | Promise<OpenResult> {
    const existing = this.#sessions.get(info.clientId);
    if (existing !== undefined) return this.#open(conn, info, expiryInterval, existing);
    // another node may hold it (a cluster transport answers asynchronously; the local one at once)
    const node = this.#k.ext.cluster.locate(info.clientId);
    if (node instanceof Promise) {
      return node.then((n) => this.#fromNode(n, info, conn.listener)).then((s) => this.#open(conn, info, expiryInterval, s));
    }
    if (node !== undefined && node !== this.#k.nodeId) {
      return this.#fromNode(node, info, conn.listener).then((s) => this.#open(conn, info, expiryInterval, s));
    }
    return this.#open(conn, info, expiryInterval, undefined);
  }

  #open(conn: Connection, info: ConnectInfo, expiryInterval: number, existing: Session | undefined): OpenResult {
    const k = this.#k;
    let present = false;
    let session: Session | undefined;
    if (existing !== undefined) {
      const old = existing.conn;
      let takenWill: WillInfo | undefined;
      if (old !== null) {
        takenWill = this.#detach(existing, TAKEN_OVER, true);
        old.session = null; // its close must not touch the session any more
        old.disconnect(0x8e, 'session taken over');
      }
      if (existing.expiryDeadline !== undefined) k.scheduler.cancel(existing.expiryDeadline);
      existing.expiryDeadline = undefined;
      if (info.cleanStart) {
        if (takenWill !== undefined) k.publisher.publishWill(existing, takenWill);
        this.terminate(existing, 'discarded');
      } else {
        session = existing;
        present = true;
        // a taken-over connection's will goes out unless it has a delay and the session resumes;
        // a will waiting for its delay is cancelled by the resume [MQTT-3.1.3-9]
        if (takenWill !== undefined && takenWill.delayInterval <= 0) k.publisher.publishWill(existing, takenWill);
        if (existing.willDeadline !== undefined) k.scheduler.cancel(existing.willDeadline);
        existing.willDeadline = undefined;
        existing.pendingWill = undefined;
        k.metrics.counters[C['session.resumed']]!++;
      }
    }
    if (session === undefined) {
      session = new Session(k, info, conn.listener, expiryInterval, Date.now());
      this.#sessions.set(info.clientId, session);
      k.metrics.gauges.sessions.inc();
      k.metrics.counters[C['session.created']]!++;
      this.#safely('cluster register', () => k.ext.cluster.register(info.clientId));
      if (k.hooks.has('session.created')) void k.hooks.observe('session.created', { client: session.info });
    } else {
      session.connectInfo = info;
      session.listener = conn.listener;
      session.expiryInterval = expiryInterval;
    }
    return { session, present };
  }

  /** The CONNACK is going out: the session is online on this connection from now on. */
  attach(s: Session, conn: Connection): void {
    const k = this.#k;
    s.conn = conn;
    s.connectedAt = Date.now();
    s.disconnectedAt = undefined;
    s.disconnectReason = undefined;
    if (s.persistent) {
      s.journaled = true;
      k.journal.record({ op: 'put', session: s.snapshot(k.nodeId) });
    }
  }

  /**
   * The connection closed while its session was being opened: the session stays (or ends) as if its
   * client had disconnected, without a will (the connection was never accepted).
   */
  abandon(s: Session): void {
    if (s.conn !== null || s.terminated) return;
    const now = Date.now();
    s.disconnectedAt = now;
    if (s.expiryInterval === 0) this.terminate(s, 'disconnected');
    else this.#scheduleExpiry(s, now);
  }

  async #fromNode(node: number | undefined, info: ConnectInfo, listener: ListenerConfig): Promise<Session | undefined> {
    if (node === undefined || node === this.#k.nodeId) return undefined;
    // the session may have arrived here meanwhile
    const here = this.#sessions.get(info.clientId);
    if (here !== undefined) return here;
    const snap = await this.#k.ext.cluster.takeover(info.clientId, node);
    if (snap === undefined) return undefined;
    return this.restore(snap, listener, Date.now());
  }

  /** Rebuild an offline session from a snapshot (another node's, or the SessionStore's at start-up). */
  restore(snap: SessionSnapshot, listener: ListenerConfig, now: number): Session {
    const k = this.#k;
    const s = new Session(k, snap.connectInfo, listener, snap.expiryInterval, snap.createdAt);
    s.disconnectedAt = snap.disconnectedAt ?? now;
    // it is in the store (or goes there when its client attaches): its end must be written too
    s.journaled = s.persistent;
    for (const id of snap.awaitingRel) s.addAwaitingRel(id);
    k.metrics.gauges.in_inflights.inc(snap.awaitingRel.length);
    s.out.restore(snap.inflight, snap.queued);
    this.#sessions.set(s.clientId, s);
    k.metrics.gauges.sessions.inc();
    restoreSubscriptions(k, s, snap.subscriptions);
    this.#safely('cluster register', () => k.ext.cluster.register(s.clientId));
    this.#scheduleExpiry(s, s.disconnectedAt);
    return s;
  }

  /** The connection of a session closed (not by takeover). */
  connectionClosed(conn: Connection, reason: DisconnectReason, publishWill: boolean): void {
    const s = conn.session;
    if (s === null || s.conn !== conn) return;
    const will = this.#detach(s, reason, publishWill);
    const k = this.#k;
    if (s.persistent) k.journal.record({ op: 'offline', clientId: s.clientId, at: s.disconnectedAt!, expiryInterval: s.expiryInterval });
    if (will !== undefined) this.#armWill(s, will, s.disconnectedAt!);
    if (s.expiryInterval === 0) this.terminate(s, reason.by === 'server' ? 'kicked' : 'disconnected');
    else this.#scheduleExpiry(s, s.disconnectedAt!);
  }

  /** The session goes offline: hooks and metrics. Returns the will to publish, if any. */
  #detach(s: Session, reason: DisconnectReason, publishWill: boolean): WillInfo | undefined {
    const k = this.#k;
    s.conn = null;
    s.disconnectedAt = Date.now();
    s.disconnectReason = reason.message;
    s.out.detach();
    k.metrics.counters[C['client.disconnected']]!++;
    if (k.hooks.has('client.disconnected')) void k.hooks.observe('client.disconnected', { client: s.info, reason });
    // the will of the connection that just ended (its CONNECT is still the session's connect info)
    return publishWill ? s.connectInfo.will : undefined;
  }

  /** Publish a will now, or at the earlier of its delay and the session's end [MQTT-3.1.3-9]. */
  #armWill(s: Session, will: WillInfo, now: number): void {
    const delay = will.delayInterval;
    if (delay <= 0 || s.expiryInterval === 0) {
      this.#k.publisher.publishWill(s, will);
      return;
    }
    s.pendingWill = will;
    s.willDeadline = this.#k.scheduler.at(now + delay * 1000, () => {
      s.willDeadline = undefined;
      const w = s.pendingWill;
      s.pendingWill = undefined;
      if (w !== undefined) this.#k.publisher.publishWill(s, w);
    });
  }

  #scheduleExpiry(s: Session, from: number): void {
    if (s.expiryInterval === NEVER_EXPIRES) return;
    s.expiryDeadline = this.#k.scheduler.at(from + s.expiryInterval * 1000, () => {
      s.expiryDeadline = undefined;
      if (s.conn === null) this.terminate(s, 'expired');
    });
  }

  /**
   * End a session: subscriptions, queue and inflight go; a pending will is published now. `moved`:
   * the session continues on another node, so the cluster registry and stored-message records stay.
   */
  terminate(s: Session, reason: string, moved = false): void {
    if (s.terminated) return;
    const k = this.#k;
    s.terminated = true;
    if (this.#sessions.get(s.clientId) === s) this.#sessions.delete(s.clientId);
    k.metrics.gauges.sessions.dec();
    if (s.expiryDeadline !== undefined) k.scheduler.cancel(s.expiryDeadline);
    if (s.willDeadline !== undefined) k.scheduler.cancel(s.willDeadline);
    s.expiryDeadline = s.willDeadline = undefined;
    removeAllSubscriptions(k, s);
    s.out.clear();
    k.metrics.gauges.in_inflights.dec(s.awaitingRel.size);
    s.clearAwaitingRel();
    const will = s.pendingWill;
    s.pendingWill = undefined;
    if (will !== undefined && !moved) k.publisher.publishWill(s, will);
    k.metrics.counters[C['session.terminated']]!++;
    if (s.journaled) k.journal.record({ op: 'remove', clientId: s.clientId });
    if (!moved) {
      this.#safely('cluster unregister', () => k.ext.cluster.unregister(s.clientId));
      const ms = k.ext.messageStore;
      if (ms !== null) this.#safely('message store forget', () => ms.forget(s.clientId));
    }
    if (k.hooks.has('session.terminated')) void k.hooks.observe('session.terminated', { client: s.info, reason });
  }

  /**
   * Shutdown: wills still waiting for their delay go out now — their sessions end with the process
   * [MQTT-3.1.3-9].
   */
  publishPendingWills(): void {
    for (const s of this.#sessions.values()) {
      const will = s.pendingWill;
      if (will === undefined) continue;
      if (s.willDeadline !== undefined) this.#k.scheduler.cancel(s.willDeadline);
      s.willDeadline = undefined;
      s.pendingWill = undefined;
      this.#k.publisher.publishWill(s, will);
    }
  }

  /**
   * Disconnect a client and end its session: an administrator's kick (DISCONNECT 0x98; the will is
   * published, as for any server-side close [MQTT-3.1.2-8]), or a session moving to another node (0x8E,
   * no will: it goes along with the session).
   */
  kick(clientId: string, reasonCode: number, message: string, moved = false): Session | undefined {
    const s = this.#sessions.get(clientId);
    if (s === undefined) return undefined;
    const conn = s.conn;
    if (conn !== null) {
      const will = this.#detach(s, { code: reasonCode, by: 'server', message }, !moved);
      conn.session = null;
      conn.disconnect(reasonCode, message, false);
      if (will !== undefined) this.#k.publisher.publishWill(s, will);
    }
    this.terminate(s, message, moved);
    return s;
  }
}
