/**
 * Counters and gauges with RMQTT's names (`/metrics` and `/stats`). Counters live in a typed array
 * indexed by constants, so the hot path pays one increment; plugins may add counters by name.
 */
import type { Metrics } from '@rmqtt-ts/plugin-api';

/** RMQTT's `/metrics` counters, then rmqtt-ts's own (documented in the kernel README). */
export const COUNTER_NAMES = [
  'client.auth.anonymous',
  'client.auth.anonymous.error',
  'client.authenticate',
  'client.connack',
  'client.connack.error',
  'client.connack.auth.error',
  'client.connack.unavailable.error',
  'client.connect',
  'client.connected',
  'client.disconnected',
  'client.handshaking.timeout',
  'client.publish.auth.error',
  'client.publish.check.acl',
  'client.publish.error',
  'client.subscribe.auth.error',
  'client.subscribe.check.acl',
  'client.subscribe.error',
  'client.subscribe',
  'client.unsubscribe',
  'messages.publish',
  'messages.publish.admin',
  'messages.publish.bridge',
  'messages.publish.custom',
  'messages.publish.lastwill',
  'messages.publish.system',
  'messages.delivered',
  'messages.delivered.admin',
  'messages.delivered.bridge',
  'messages.delivered.custom',
  'messages.delivered.lastwill',
  'messages.delivered.system',
  'messages.delivered.retain',
  'messages.acked',
  'messages.acked.admin',
  'messages.acked.bridge',
  'messages.acked.custom',
  'messages.acked.lastwill',
  'messages.acked.system',
  'messages.acked.retain',
  'messages.nonsubscribed',
  'messages.nonsubscribed.admin',
  'messages.nonsubscribed.bridge',
  'messages.nonsubscribed.custom',
  'messages.nonsubscribed.lastwill',
  'messages.nonsubscribed.system',
  'messages.dropped',
  'session.created',
  'session.resumed',
  'session.subscribed',
  'session.unsubscribed',
  'session.terminated',
  // rmqtt-ts additions
  'messages.dropped.queue_full',
  'messages.dropped.expired',
  'messages.dropped.packet_too_large',
  'messages.dropped.no_local',
  'messages.dropped.acl_denied',
  'messages.dropped.session_terminated',
  'messages.dropped.slow_consumer',
  'messages.dropped.delayed_limit',
  'messages.dropped.rejected',
  'client.connection.refused',
  'client.protocol.error',
  'client.rate_limited',
  'client.connection.rate_limited',
  'client.keepalive.timeout',
  'session.storage.errors',
] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];

/** Index constants for the hot path: `metrics.counters[C['messages.publish']]++`. */
export const C: { readonly [K in CounterName]: number } = Object.freeze(
  Object.fromEntries(COUNTER_NAMES.map((n, i) => [n, i])) as { [K in CounterName]: number },
);

/** RMQTT's `/stats` gauges: each reported as `{name}.count` and `{name}.max`. */
export const GAUGE_NAMES = [
  'connections',
  'handshakings',
  'handshakings_active',
  'handshakings_rate',
  'sessions',
  'topics',
  'subscriptions',
  'subscriptions_shared',
  'routes',
  'retained',
  'delayed_publishs',
  'forwards',
  'in_inflights',
  'out_inflights',
  'message_queues',
  'message_storages',
  // rmqtt-ts additions
  'session_storage_pending',
  'session_storage_down',
] as const;
export type GaugeName = (typeof GAUGE_NAMES)[number];

export class Gauge {
  count = 0;
  max = 0;
  inc(by = 1): void {
    this.count += by;
    if (this.count > this.max) this.max = this.count;
  }
  dec(by = 1): void {
    this.count -= by;
  }
  set(value: number): void {
    this.count = value;
    if (value > this.max) this.max = value;
  }
}

export class BrokerMetrics implements Metrics {
  readonly counters = new Float64Array(COUNTER_NAMES.length);
  readonly gauges: { readonly [K in GaugeName]: Gauge } = Object.freeze(
    Object.fromEntries(GAUGE_NAMES.map((n) => [n, new Gauge()])) as { [K in GaugeName]: Gauge },
  );
  /** Counters added by plugins. */
  readonly #extra = new Map<string, number>();
  /** Refreshes gauges that are cheaper to read than to track (called by stats()). */
  refresh: (() => void) | undefined;

  inc(name: string, by = 1): void {
    const i = (C as Record<string, number | undefined>)[name];
    if (i !== undefined && Object.hasOwn(C, name)) this.counters[i]! += by;
    else this.#extra.set(name, (this.#extra.get(name) ?? 0) + by);
  }

  get(name: string): number {
    const i = Object.hasOwn(C, name) ? (C as Record<string, number>)[name] : undefined;
    return i !== undefined ? this.counters[i]! : (this.#extra.get(name) ?? 0);
  }

  metrics(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 0; i < COUNTER_NAMES.length; i++) out[COUNTER_NAMES[i]!] = this.counters[i]!;
    for (const [k, v] of this.#extra) out[k] = v;
    return out;
  }

  stats(): Record<string, number> {
    this.refresh?.();
    const out: Record<string, number> = {};
    for (const name of GAUGE_NAMES) {
      const g = this.gauges[name];
      out[`${name}.count`] = g.count;
      out[`${name}.max`] = g.max;
    }
    return out;
  }
}
