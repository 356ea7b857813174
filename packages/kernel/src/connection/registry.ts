/**
 * Every open connection: counts per listener (max_connections, max_handshaking_limit) and one sweep a
 * second for handshake timeouts, keepalive timeouts and (MQTT 3.x only) retransmission — one timer for
 * the whole broker instead of one per connection.
 */
import { ReasonCode } from '@rmqtt-ts/plugin-api';
import type { Kernel } from '../kernel.js';
import { C } from '../metrics/metrics.js';
import type { Connection, ConnectionState } from './connection.js';

export interface ListenerCounts {
  open: number;
  handshaking: number;
}

export class ConnectionRegistry {
  readonly #all = new Set<Connection>();
  readonly #counts = new Map<string, ListenerCounts>();
  readonly #k: Kernel;
  #timer: NodeJS.Timeout | undefined;
  /** Called when a handshake slot of a listener frees up (sockets may be waiting for one). */
  onHandshakeDone: ((listener: string) => void) | undefined;

  constructor(kernel: Kernel) {
    this.#k = kernel;
  }

  get size(): number {
    return this.#all.size;
  }

  values(): IterableIterator<Connection> {
    return this.#all.values();
  }

  counts(listener: string): ListenerCounts {
    let c = this.#counts.get(listener);
    if (c === undefined) {
      c = { open: 0, handshaking: 0 };
      this.#counts.set(listener, c);
    }
    return c;
  }

  add(conn: Connection): void {
    this.#all.add(conn);
    const c = this.counts(conn.listener.name);
    c.open++;
    c.handshaking++;
    this.#k.metrics.gauges.handshakings.inc();
    this.#k.metrics.gauges.handshakings_active.inc();
  }

  /** CONNACK sent: the connection counts as connected. */
  connected(conn: Connection): void {
    this.counts(conn.listener.name).handshaking--;
    this.#k.metrics.gauges.handshakings.dec();
    this.#k.metrics.gauges.handshakings_active.dec();
    this.#k.metrics.gauges.connections.inc();
    this.onHandshakeDone?.(conn.listener.name);
  }

  remove(conn: Connection, prev: ConnectionState): void {
    if (!this.#all.delete(conn)) return;
    const c = this.counts(conn.listener.name);
    c.open--;
    if (prev === 'connected') {
      this.#k.metrics.gauges.connections.dec();
    } else {
      c.handshaking--;
      this.#k.metrics.gauges.handshakings.dec();
      this.#k.metrics.gauges.handshakings_active.dec();
      this.onHandshakeDone?.(conn.listener.name);
    }
  }

  start(): void {
    this.#timer = setInterval(this.#sweep, 1000);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  readonly #sweep = (): void => {
    const now = Date.now();
    const k = this.#k;
    for (const conn of this.#all) {
      if (conn.closed) continue;
      if (conn.state !== 'connected') {
        if (now - conn.openedAt > conn.listener.handshakeTimeoutMs) {
          k.metrics.counters[C['client.handshaking.timeout']]!++;
          conn.teardown({ code: ReasonCode.MaximumConnectTime, by: 'server', message: 'handshake timeout' }, false);
        }
        continue;
      }
      // [MQTT-3.1.2-24] no packet within keepalive × backoff × 2: the connection is gone
      if (conn.keepaliveTimeoutMs > 0 && now - conn.lastRx > conn.keepaliveTimeoutMs) {
        k.metrics.counters[C['client.keepalive.timeout']]!++;
        conn.disconnect(ReasonCode.KeepAliveTimeout, 'keepalive timeout');
        continue;
      }
      // MQTT 5 forbids re-sending within a connection [MQTT-4.4.0-1]; 3.x gets message_retry_interval
      if (conn.version !== 5 && conn.session !== null) conn.session.out.retry(now, conn.listener.messageRetryIntervalMs);
    }
  };
}
