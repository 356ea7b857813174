/**
 * /metrics/prometheus: RMQTT's three gauge families — rmqtt_metrics (counters), rmqtt_stats (gauges) and
 * rmqtt_nodes (load, memory, disk, running) — labelled `item` and `node` (a node id, or "all" for the
 * sum), rendered by prom-client and kept for prometheus_metrics_cache_interval.
 */
import { Gauge, Registry } from 'prom-client';
import type { BrokerServices } from '@rmqtt-ts/plugin-api';
import { nodeJson, type NodeFacts } from './format.js';

export type PrometheusScope = 'all' | 'sum' | 'node';

const NODE_ITEMS = ['load1', 'load5', 'load15', 'memory_total', 'memory_used', 'memory_free', 'disk_total', 'disk_free'] as const;

export class PrometheusExporter {
  readonly #broker: BrokerServices;
  readonly #cacheMs: () => number;
  readonly #facts: () => Promise<NodeFacts>;
  readonly #cache = new Map<PrometheusScope, { at: number; text: string }>();
  readonly contentType = Registry.PROMETHEUS_CONTENT_TYPE;

  constructor(broker: BrokerServices, cacheMs: () => number, facts: () => Promise<NodeFacts>) {
    this.#broker = broker;
    this.#cacheMs = cacheMs;
    this.#facts = facts;
  }

  /** The exposition text for one scope: every node and "all", the sum only, or this node only. */
  async text(scope: PrometheusScope): Promise<string> {
    const now = Date.now();
    const hit = this.#cache.get(scope);
    if (hit !== undefined && now - hit.at < this.#cacheMs()) return hit.text;
    const text = await this.#render(scope, now);
    this.#cache.set(scope, { at: now, text });
    return text;
  }

  async #render(scope: PrometheusScope, now: number): Promise<string> {
    const b = this.#broker;
    const registry = new Registry();
    const metrics = new Gauge({ name: 'rmqtt_metrics', help: 'metrics data', labelNames: ['item', 'node'], registers: [registry] });
    const nodes = new Gauge({ name: 'rmqtt_nodes', help: 'nodes status', labelNames: ['item', 'node'], registers: [registry] });
    const stats = new Gauge({ name: 'rmqtt_stats', help: 'status data', labelNames: ['item', 'node'], registers: [registry] });
    const labels = scope === 'all' ? [String(b.nodeId), 'all'] : scope === 'sum' ? ['all'] : [String(b.nodeId)];
    const m = b.metrics.metrics();
    const s = b.metrics.stats();
    const n = nodeJson(await this.#facts(), now);
    // one node: its figures are also the sum
    for (const node of labels) {
      for (const [item, v] of Object.entries(m)) metrics.set({ item, node }, v);
      for (const [item, v] of Object.entries(s)) stats.set({ item, node }, Math.trunc(v));
      for (const item of NODE_ITEMS) nodes.set({ item, node }, Number(n[item]));
      nodes.set({ item: 'running', node }, 1);
    }
    return registry.metrics();
  }
}
