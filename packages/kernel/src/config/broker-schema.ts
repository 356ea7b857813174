/**
 * The main config schema (rmqtt.toml): RMQTT's sections with RMQTT's code defaults, plus one listener
 * subtree per listener name the sources mention. Keys rmqtt-ts accepts but does not implement are in
 * the schema (so their values are still checked) and listed in UNIMPLEMENTED_KEYS for the warning.
 */
import { Formats, numberFormat, oneOfFormat } from './formats.js';
import { listenerSchema, toListenerConfig } from './listener-schema.js';
import type { AnyListenerType } from './listener-schema.js';
import type { BrokerConfig, ClusterFlags, ListenerType, LogLevel, LogTarget } from './types.js';

export const LOG_TARGETS: readonly LogTarget[] = ['off', 'file', 'console', 'both'];
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error'];

/**
 * RMQTT settings accepted without effect; any of them set in a source produces one warning line naming
 * them. `*` matches one key segment, `**` the rest of the key. Add or remove a line to change the list.
 */
export const UNIMPLEMENTED_KEYS: readonly { pattern: string; why: string }[] = [
  { pattern: 'task.**', why: 'RMQTT task executor; Node has its own event loop' },
  { pattern: 'rpc.**', why: 'RMQTT gRPC between nodes; clustering is a plugin here' },
  { pattern: 'node.busy.**', why: 'busy-node CONNECT refusal not implemented' },
  { pattern: 'node.cookie', why: 'used by clustering, which is not implemented yet' },
  { pattern: 'circuit_breaker.**', why: 'storage/gRPC circuit breaker not implemented' },
  { pattern: 'listener.quic.**', why: 'QUIC listeners are not implemented and not started' },
  { pattern: 'listener.*.*.workers', why: 'unused by RMQTT too' },
  { pattern: 'listener.*.*.idle_timeout', why: 'QUIC only' },
  { pattern: 'listener.*.*.collect_cert_info', why: 'certificate details are not attached to connections' },
  { pattern: 'listener.*.*.cert_subject_dn_as_username', why: 'only cert_cn_as_username is implemented' },
  { pattern: 'listener.*.*.reuseaddr', why: 'older RMQTT socket option' },
  { pattern: 'listener.*.*.reuseport', why: 'older RMQTT socket option' },
  { pattern: 'listener.*.*.shared_subscription', why: 'older RMQTT switch; $share is the shared-subscription plugin' },
  { pattern: 'listener.*.*.retain_available', why: 'removed in RMQTT 0.11; retain is the retainer plugin' },
];

function patternRegExp(pattern: string): RegExp {
  const body = pattern
    .split('.')
    .map((s) => (s === '**' ? '.+' : s === '*' ? '[^.]+' : s.replace(/[^a-z0-9_]/gi, '\\$&')))
    .join('\\.');
  return new RegExp(`^${body}$`);
}

const UNIMPLEMENTED_RES = UNIMPLEMENTED_KEYS.map((u) => patternRegExp(u.pattern));

export function isUnimplementedKey(key: string): boolean {
  return UNIMPLEMENTED_RES.some((re) => re.test(key));
}

/** Everything but the listeners. */
function baseSchema(): Record<string, unknown> {
  const ratio = numberFormat(0, 1);
  return {
    task: {
      exec_workers: { doc: 'RMQTT: concurrent tasks of the global executor.', format: Formats.uint, default: 1000 },
      exec_queue_max: { doc: 'RMQTT: queue capacity of the global executor.', format: Formats.uint, default: 300_000 },
    },
    node: {
      id: { doc: 'Node id; --id overrides it when > 0.', format: Formats.uint, default: 0 },
      cookie: { doc: 'Shared secret between cluster nodes.', format: Formats.string, default: 'rmqttsecretcookie', sensitive: true },
      busy: {
        check_enable: { doc: 'RMQTT: refuse CONNECT while the node is busy.', format: Formats.bool, default: true },
        update_interval: { doc: 'RMQTT: busy-state refresh interval.', format: Formats.duration, default: '2s' },
        loadavg: { doc: 'RMQTT: 1-minute load threshold (0–100).', format: numberFormat(0, 100), default: 80 },
        cpuloadavg: { doc: 'RMQTT: CPU load threshold (0–100).', format: numberFormat(0, 100), default: 90 },
        handshaking: { doc: 'RMQTT: concurrent handshakes threshold; 0 = 35% of max_handshaking_limit.', format: Formats.uint, default: 0 },
      },
    },
    rpc: {
      server_addr: { doc: 'RMQTT: gRPC listen address.', format: Formats.addr, default: '0.0.0.0:5363' },
      reuseaddr: { doc: 'RMQTT: SO_REUSEADDR on the gRPC socket.', format: Formats.bool, default: true },
      reuseport: { doc: 'RMQTT: SO_REUSEPORT on the gRPC socket.', format: Formats.bool, default: false },
      server_workers: { doc: 'RMQTT (older): gRPC server workers.', format: Formats.uint, default: 4 },
      client_concurrency_limit: { doc: 'RMQTT (older): gRPC client concurrency.', format: Formats.uint, default: 128 },
      client_timeout: { doc: 'RMQTT (older): gRPC client timeout.', format: Formats.duration, default: '5s' },
      batch_size: { doc: 'RMQTT (older): gRPC batch size.', format: Formats.uint, default: 128 },
    },
    log: {
      to: { doc: 'Where logs go.', format: oneOfFormat(LOG_TARGETS), default: 'console' },
      level: { doc: 'Lowest level written.', format: oneOfFormat(LOG_LEVELS), default: 'info' },
      dir: { doc: 'Directory of the log file (log.to = file or both).', format: Formats.string, default: '/var/log/rmqtt' },
      file: { doc: 'Log file name inside log.dir.', format: Formats.string, default: 'rmqtt.log' },
    },
    plugins: {
      dir: { doc: 'Directory of the plugin config files rmqtt-<name>.toml.', format: Formats.string, default: './configs/plugins' },
      default_startups: { doc: 'Plugins started at boot, in this order.', format: Formats.stringList, default: [] },
      disabled_default_startups: { doc: 'Plugins never started at boot even when listed.', format: Formats.stringList, default: [] },
    },
    mqtt: {
      delayed_publish_max: { doc: 'Most pending $delayed messages per node.', format: Formats.uint, default: 100_000 },
      delayed_publish_immediate: { doc: 'Over the limit: true = publish at once, false = drop.', format: Formats.bool, default: true },
      max_sessions: { doc: 'Sessions per node; 0 = unlimited.', format: Formats.uint, default: 0 },
    },
    circuit_breaker: {
      failure_rate_threshold: { doc: 'RMQTT circuit breaker.', format: ratio, default: 0.35 },
      sliding_window_type: { doc: 'RMQTT circuit breaker.', format: oneOfFormat(['CountBased', 'TimeBased']), default: 'TimeBased' },
      sliding_window_size: { doc: 'RMQTT circuit breaker.', format: Formats.uint, default: 20 },
      sliding_window_duration: { doc: 'RMQTT circuit breaker.', format: Formats.duration, default: '45s' },
      minimum_number_of_calls: { doc: 'RMQTT circuit breaker.', format: Formats.uint, default: 10 },
      wait_duration_in_open: { doc: 'RMQTT circuit breaker.', format: Formats.duration, default: '30s' },
      slow_call_duration_threshold: { doc: 'RMQTT circuit breaker.', format: Formats.duration, default: '2s' },
      slow_call_rate_threshold: { doc: 'RMQTT circuit breaker.', format: ratio, default: 1 },
    },
  };
}

export interface ListenerRef {
  type: AnyListenerType;
  name: string;
}

/** The full schema for these listeners (already including RMQTT's default tcp.external when due). */
export function buildBrokerSchema(listeners: readonly ListenerRef[]): Record<string, unknown> {
  const schema = baseSchema();
  const tree: Record<string, Record<string, unknown>> = {};
  for (const { type, name } of listeners) {
    tree[type] ??= {};
    tree[type][name] = listenerSchema(type);
  }
  schema['listener'] = tree;
  return schema;
}

/** Validated properties → BrokerConfig. */
export function toBrokerConfig(props: Record<string, unknown>, listeners: readonly ListenerRef[], cluster: ClusterFlags): BrokerConfig {
  const node = props['node'] as Record<string, unknown>;
  const log = props['log'] as Record<string, unknown>;
  const plugins = props['plugins'] as Record<string, unknown>;
  const mqtt = props['mqtt'] as Record<string, unknown>;
  const listenerTree = props['listener'] as Record<string, Record<string, Record<string, unknown>>>;
  return {
    node: { id: node['id'] as number, cookie: node['cookie'] as string },
    log: { to: log['to'] as LogTarget, level: log['level'] as LogLevel, dir: log['dir'] as string, file: log['file'] as string },
    plugins: {
      dir: plugins['dir'] as string,
      defaultStartups: plugins['default_startups'] as string[],
      disabledDefaultStartups: plugins['disabled_default_startups'] as string[],
    },
    mqtt: {
      delayedPublishMax: mqtt['delayed_publish_max'] as number,
      delayedPublishImmediate: mqtt['delayed_publish_immediate'] as boolean,
      maxSessions: mqtt['max_sessions'] as number,
    },
    listeners: listeners
      .filter((l): l is { type: ListenerType; name: string } => l.type !== 'quic')
      .map((l) => toListenerConfig(l.type, l.name, listenerTree[l.type]?.[l.name] ?? {})),
    cluster,
  };
}
