/**
 * RMQTT's JSON shapes: the kernel's summaries turned into the objects RMQTT's HTTP API answers with
 * (snake_case names, local "YYYY-MM-DD HH:MM:SS" times, "undefined" for a missing username).
 */
import { freemem, loadavg, totalmem, uptime as osUptime } from 'node:os';
import { rmqttTime, type ClientSummary, type PluginSummary, type SubscriptionSummary } from '@rmqtt-ts/plugin-api';

/** ms since the epoch → "YYYY-MM-DD HH:MM:SS" in local time; "" for 0 / unset. */
export function formatTime(ms: number | undefined): string {
  return ms === undefined || ms <= 0 ? '' : rmqttTime(ms);
}

/** RMQTT's uptime text: "5 days 23 hours, 16 minutes, 3 seconds". */
export function formatUptime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${d} days ${h} hours, ${m} minutes, ${s % 60} seconds`;
}

/**
 * A time filter of /clients: "YYYY-MM-DD HH:MM:SS" (local time) or unix seconds. Gives ms, or undefined
 * when the text is neither.
 */
export function parseTimeFilter(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})$/.exec(t);
  if (m === null) return undefined;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return Number.isNaN(d.getTime()) ? undefined : d.getTime();
}

export function nodeName(nodeId: number): string {
  return `${nodeId}@127.0.0.1`;
}

export function clientJson(c: ClientSummary): Record<string, unknown> {
  const w = c.lastWill;
  return {
    node_id: c.node,
    clientid: c.clientId,
    username: c.username ?? 'undefined',
    superuser: c.superuser,
    proto_ver: c.protoVer,
    ip_address: c.ipAddress ?? null,
    port: c.port ?? null,
    connected: c.connected,
    connected_at: formatTime(c.connectedAt),
    disconnected_at: c.connected ? '' : formatTime(c.disconnectedAt),
    disconnected_reason: c.connected ? '' : (c.disconnectedReason ?? ''),
    keepalive: c.keepalive,
    clean_start: c.cleanStart,
    session_present: c.sessionPresent,
    expiry_interval: c.expiryInterval,
    created_at: formatTime(c.createdAt),
    subscriptions_cnt: c.subscriptionsCount,
    max_subscriptions: c.subscriptionsMax,
    inflight: c.inflight,
    max_inflight: c.inflightMax,
    mqueue_len: c.mqueueLen,
    max_mqueue: c.mqueueMax,
    last_will: w === undefined ? null : { qos: w.qos, retain: w.retain, topic: w.topic, message: w.payload.toString('base64') },
  };
}

/** The kicked session's id, as RMQTT answers DELETE /clients/{clientid}. */
export function clientIdJson(c: ClientSummary): Record<string, unknown> {
  return {
    node: c.node,
    ipaddress: c.ipAddress === undefined ? null : `${c.ipAddress}:${c.port ?? 0}`,
    clientid: c.clientId,
    username: c.username ?? 'undefined',
    create_time: c.createdAt,
  };
}

export function subscriptionJson(s: SubscriptionSummary): Record<string, unknown> {
  return {
    node_id: s.node,
    clientid: s.clientId,
    client_addr: s.clientAddr ?? null,
    topic: s.topic,
    qos: s.qos,
    share: s.share ?? null,
  };
}

export function pluginJson(p: PluginSummary): Record<string, unknown> {
  return {
    name: p.name,
    package: p.packageName,
    version: p.version,
    descr: p.description,
    authors: null,
    homepage: null,
    license: null,
    repository: null,
    inited: p.inited,
    active: p.active,
    immutable: p.immutable,
    state: p.state,
    attrs: p.attrs,
  };
}

export interface NodeFacts {
  nodeId: number;
  version: string;
  startedAt: number;
  connections: number;
  disk: { total: number; free: number } | undefined;
}

export function brokerJson(f: NodeFacts, now: number): Record<string, unknown> {
  return {
    datetime: formatTime(now),
    node_id: f.nodeId,
    node_name: nodeName(f.nodeId),
    running: true,
    sysdescr: 'rmqtt-ts broker',
    uptime: formatUptime((now - f.startedAt) / 1000),
    version: `rmqtt-ts/${f.version}`,
    // RMQTT's field name, kept for its tools: the runtime's version
    rustc_version: `Node.js ${process.version}`,
  };
}

export function nodeJson(f: NodeFacts, now: number): Record<string, unknown> {
  const [load1, load5, load15] = loadavg() as [number, number, number];
  const total = totalmem();
  const free = freemem();
  return {
    ...brokerJson(f, now),
    boottime: formatTime(now - osUptime() * 1000),
    connections: f.connections,
    load1,
    load5,
    load15,
    memory_total: total,
    memory_used: total - free,
    memory_free: free,
    disk_total: f.disk?.total ?? 0,
    disk_free: f.disk?.free ?? 0,
  };
}
