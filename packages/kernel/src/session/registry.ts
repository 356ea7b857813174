/**
 * All sessions of this node by client id: opening (new, resumed, taken over), detaching on disconnect
 * (will, expiry), terminating.
 */
import type { ClusterTransport, ConnectInfo, DisconnectReason, SessionSnapshot, WillInfo } from '@rmqtt-ts/plugin-api';
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

  /**
   * Give a connection its session: take over a connected one (DISCONNECT 0x8E to the old connection),
   * resume a persistent one unless clean start asks for a new one, or create one. A session from another
   * node comes through the cluster transport.
   */
  async open(conn: Connection, info: ConnectInfo, expiryInterval: number): Promise<OpenResult> {
    const k = this.#k;
    const now = Date.now();
    let existing = this.#sessions.get(info.clientId);
    if (existing === undefined) existing = await this.#fromCluster(info, conn.listener, now);
    let present = false;
    let session: Session | undefined;
    if (existing !== undefined) {
      const old = existing.conn;
      if (old !== null) {
        this.#detach(existing, { code: 0x8e, by: 'server', message: 'session taken over' }, true, true);
        old.session = null; // its close must not touch the session any more
        old.disconnect(0x8e, 'session taken over');
      }
      if (existing.expiryDeadline !== undefined) k.scheduler.cancel(existing.expiryDeadline);
      existing.expiryDeadline = undefined;
      if (info.cleanStart) {
        this.terminate(existing, 'discarded');
      } else {
        session = existing;
        present = true;
        // the will of the previous connection waits no more: the session resumed [MQTT-3.1.3-9]
        if (existing.willDeadline !== undefined) k.scheduler.cancel(existing.willDeadline);
        existing.willDeadline = undefined;
        existing.pendingWill = undefined;
        k.metrics.counters[C['session.resumed']]!++;
      }
    }
    if (session === undefined) {
      session = new Session(k, info, conn.listener, expiryInterval, now);
      this.#sessions.set(info.clientId, session);
      k.metrics.gauges.sessions.inc();
      k.metrics.counters[C['session.created']]!++;
      void k.ext.cluster.register(info.clientId);
      if (k.hooks.has('session.created')) void k.hooks.observe('session.created', { client: session.info });
    } else {
      session.connectInfo = info;
      session.listener = conn.listener;
      session.expiryInterval = expiryInterval;
    }
    session.conn = conn;
    session.connectedAt = now;
    session.disconnectedAt = undefined;
    session.disconnectReason = undefined;
    if (session.persistent) k.journal.record({ op: 'put', session: session.snapshot(k.nodeId) });
    return { session, present };
  }

  async #fromCluster(info: ConnectInfo, listener: ListenerConfig, now: number): Promise<Session | undefined> {
    const cluster: ClusterTransport = this.#k.ext.cluster;
    const node = await cluster.locate(info.clientId);
    if (node === undefined || node === this.#k.nodeId) return undefined;
    const snap = await cluster.takeover(info.clientId, node);
    if (snap === undefined) return undefined;
    return this.restore(snap, listener, now);
  }

  /** Rebuild an offline session from a snapshot (another node's, or the SessionStore's at start-up). */
  restore(snap: SessionSnapshot, listener: ListenerConfig, now: number): Session {
    const k = this.#k;
    const s = new Session(k, snap.connectInfo, listener, snap.expiryInterval, snap.createdAt);
    s.disconnectedAt = snap.disconnectedAt ?? now;
    for (const id of snap.awaitingRel) s.awaitingRel.add(id);
    k.metrics.gauges.in_inflights.inc(snap.awaitingRel.length);
    s.out.restore(snap.inflight, snap.queued);
    this.#sessions.set(s.clientId, s);
    k.metrics.gauges.sessions.inc();
    restoreSubscriptions(k, s, snap.subscriptions);
    void k.ext.cluster.register(s.clientId);
    this.#scheduleExpiry(s, s.disconnectedAt);
    return s;
  }

  /** The connection of a session closed (not by takeover). */
  connectionClosed(conn: Connection, reason: DisconnectReason, publishWill: boolean): void {
    const s = conn.session;
    if (s === null || s.conn !== conn) return;
    this.#detach(s, reason, publishWill, false);
  }

  /**
   * The session goes offline: hooks and metrics, then the will and the expiry. On takeover the
   * session is not expired here: the new connection decides its fate.
   */
  #detach(s: Session, reason: DisconnectReason, publishWill: boolean, takeover: boolean): void {
    const k = this.#k;
    const now = Date.now();
    s.conn = null;
    s.disconnectedAt = now;
    s.disconnectReason = reason.message;
    s.out.detach();
    k.metrics.counters[C['client.disconnected']]!++;
    if (k.hooks.has('client.disconnected')) void k.hooks.observe('client.disconnected', { client: s.info, reason });
    // the will of the connection that just ended (its CONNECT is still the session's connect info)
    const will = publishWill ? s.connectInfo.will : undefined;
    if (takeover) {
      if (will !== undefined) this.#armWill(s, will, now);
      return;
    }
    if (s.persistent) k.journal.record({ op: 'offline', clientId: s.clientId, at: now, expiryInterval: s.expiryInterval });
    if (will !== undefined) this.#armWill(s, will, now);
    if (s.expiryInterval === 0) this.terminate(s, reason.by === 'server' ? 'kicked' : 'disconnected');
    else this.#scheduleExpiry(s, now);
  }

  /** Publish a will now, or at the earlier of its delay and the session's end [MQTT-3.1.3-9]. */
  #armWill(s: Session, will: WillInfo, now: number): void {
    const delay = will.delayInterval;
    if (delay <= 0 || s.expiryInterval === 0) {
      this.#k.publisher.publishWill(s.info, will);
      return;
    }
    s.pendingWill = will;
    s.willDeadline = this.#k.scheduler.at(now + delay * 1000, () => {
      s.willDeadline = undefined;
      const w = s.pendingWill;
      s.pendingWill = undefined;
      if (w !== undefined) this.#k.publisher.publishWill(s.info, w);
    });
  }

  #scheduleExpiry(s: Session, from: number): void {
    if (s.expiryInterval === NEVER_EXPIRES) return;
    s.expiryDeadline = this.#k.scheduler.at(from + s.expiryInterval * 1000, () => {
      s.expiryDeadline = undefined;
      if (s.conn === null) this.terminate(s, 'expired');
    });
  }

  /** End a session: subscriptions, queue and inflight go; a pending will is published now. */
  terminate(s: Session, reason: string): void {
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
    s.awaitingRel.clear();
    const will = s.pendingWill;
    s.pendingWill = undefined;
    if (will !== undefined) k.publisher.publishWill(s.info, will);
    k.metrics.counters[C['session.terminated']]!++;
    if (s.persistent || s.expiryInterval === 0) k.journal.record({ op: 'remove', clientId: s.clientId });
    void k.ext.cluster.unregister(s.clientId);
    if (k.ext.messageStore !== null) void k.ext.messageStore.forget(s.clientId);
    if (k.hooks.has('session.terminated')) void k.hooks.observe('session.terminated', { client: s.info, reason });
  }

  /** Kick a client and end its session (admin action, or handing the session to another node). */
  kick(clientId: string, reasonCode: number, message: string): Session | undefined {
    const s = this.#sessions.get(clientId);
    if (s === undefined) return undefined;
    const conn = s.conn;
    if (conn !== null) {
      this.#detach(s, { code: reasonCode, by: 'server', message }, false, true);
      conn.session = null;
      conn.disconnect(reasonCode, message, false);
    }
    this.terminate(s, message);
    return s;
  }
}
