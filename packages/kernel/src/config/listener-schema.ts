/**
 * `listener.{type}.{name}.*`: one table of keys from which both the convict subtree of each listener and
 * the camelCase ListenerConfig are generated. Defaults are RMQTT's code defaults (rmqtt-conf
 * listener.rs), not the values of its shipped rmqtt.toml.
 */
import { Formats, intFormat, numberFormat } from './formats.js';
import type { ListenerConfig, ListenerType } from './types.js';

/** Every type the file may name; quic is accepted (with a warning) and never started. */
export const LISTENER_TYPES = ['tcp', 'tls', 'ws', 'wss', 'quic'] as const;
export type AnyListenerType = (typeof LISTENER_TYPES)[number];
export const STARTED_LISTENER_TYPES: readonly ListenerType[] = ['tcp', 'tls', 'ws', 'wss'];

/** Largest MQTT packet: 1 byte fixed header + 4 bytes Remaining Length + 268435455. */
export const MAX_PACKET_SIZE = 268_435_460;

const TLS_TYPES: readonly AnyListenerType[] = ['tls', 'wss', 'quic'];
const WS_TYPES: readonly AnyListenerType[] = ['ws', 'wss'];

/** Per-type bind address when the file gives none (RMQTT uses 1883 for all, so two would collide). */
const DEFAULT_ADDR: Readonly<Record<AnyListenerType, string>> = { tcp: '0.0.0.0:1883', tls: '0.0.0.0:8883', ws: '0.0.0.0:8080', wss: '0.0.0.0:8443', quic: '0.0.0.0:14567' };

export interface ListenerKey {
  key: string;
  format: string;
  /** As a user would write it; converted by the format. A function picks it by listener type. */
  default: unknown;
  doc: string;
  /** Listener types the key applies to; all when absent. */
  types?: readonly AnyListenerType[];
  /** false: RMQTT key accepted for compatibility, not in ListenerConfig (see UNIMPLEMENTED_KEYS). */
  mapped?: false;
  /** Final adjustment when building ListenerConfig. */
  toConfig?: (value: unknown) => unknown;
  sensitive?: boolean;
}

const u16 = intFormat(0, 65535);
const nonZeroU16 = intFormat(1, 65535);

export const LISTENER_KEYS: readonly ListenerKey[] = [
  { key: 'enable', format: Formats.bool, default: true, doc: 'Start this listener.' },
  { key: 'addr', format: Formats.addr, default: (type: AnyListenerType) => DEFAULT_ADDR[type], doc: 'Bind address "host:port"; port 0 picks a free port.' },
  { key: 'workers', format: Formats.uint, default: 8, doc: 'RMQTT worker threads (unused by RMQTT too).', mapped: false },
  { key: 'max_connections', format: Formats.uint, default: 1_024_000, doc: 'Concurrent connections; capped by the open-file limit at start-up.' },
  { key: 'max_handshaking_limit', format: Formats.uint, default: 500, doc: 'Connections allowed between accept and CONNACK at once.' },
  { key: 'handshake_timeout', format: Formats.duration, default: '15s', doc: 'Time allowed from accept to CONNECT.' },
  {
    key: 'max_packet_size',
    format: Formats.size,
    default: '1M',
    doc: 'Largest inbound packet; 0 = unlimited (the MQTT maximum).',
    toConfig: (v) => (v === 0 ? MAX_PACKET_SIZE : v),
  },
  { key: 'backlog', format: Formats.uint, default: 1024, doc: 'TCP accept queue length.' },
  { key: 'nodelay', format: Formats.bool, default: false, doc: 'TCP_NODELAY on accepted sockets.' },
  { key: 'tcp_keepalive', format: Formats.bool, default: true, doc: 'SO_KEEPALIVE on accepted sockets.' },
  { key: 'reuseaddr', format: Formats.bool, default: true, doc: 'Older RMQTT socket option.', mapped: false },
  { key: 'reuseport', format: Formats.bool, default: false, doc: 'Older RMQTT socket option.', mapped: false },
  { key: 'allow_anonymous', format: Formats.bool, default: false, doc: 'Accept clients that no auth plugin decides on.' },
  { key: 'min_keepalive', format: u16, default: 0, doc: 'Smallest keepalive accepted (v3: refused below, v5: raised), seconds.' },
  { key: 'max_keepalive', format: u16, default: 65535, doc: 'Largest keepalive accepted (v3: refused above, v5: lowered), seconds.' },
  { key: 'allow_zero_keepalive', format: Formats.bool, default: true, doc: 'Accept keepalive 0 (no timeout).' },
  { key: 'keepalive_backoff', format: numberFormat(0.5, 1, { minExclusive: true }), default: 0.75, doc: 'Close after keepalive × backoff × 2 silent seconds.' },
  { key: 'max_inflight', format: nonZeroU16, default: 16, doc: 'Unacknowledged QoS 1/2 messages per client, both ways.' },
  { key: 'max_mqueue_len', format: Formats.uint, default: 1000, doc: 'Queued messages per offline or busy session.' },
  { key: 'mqueue_rate_limit', format: Formats.rate, default: 0, doc: 'Paces draining of the offline queue, "burst,period"; off when unset.' },
  { key: 'max_clientid_len', format: nonZeroU16, default: 65535, doc: 'Longest client id accepted.' },
  { key: 'max_qos_allowed', format: intFormat(0, 2), default: 2, doc: 'Highest QoS granted and accepted.' },
  { key: 'max_topic_levels', format: Formats.uint, default: 0, doc: 'Most topic levels; 0 = unlimited.' },
  { key: 'session_expiry_interval', format: Formats.durationSeconds, default: '2h', doc: 'Lifetime of a v3 persistent session after disconnect.' },
  { key: 'max_session_expiry_interval', format: Formats.durationSeconds, default: '0s', doc: 'Cap on v5 session expiry; 0 = no cap.' },
  { key: 'message_retry_interval', format: Formats.duration, default: '30s', doc: 'Resend of unacknowledged messages to v3 clients; 0 = never.' },
  { key: 'message_expiry_interval', format: Formats.durationSeconds, default: '5m', doc: 'Expiry of messages that carry none (v3, API, $SYS); 0 = never.' },
  { key: 'max_subscriptions', format: Formats.uint, default: 0, doc: 'Subscriptions per client; 0 = unlimited.' },
  { key: 'max_topic_aliases', format: u16, default: 0, doc: 'Inbound topic aliases per v5 client; 0 = none.' },
  { key: 'max_awaiting_rel', format: Formats.uint, default: 100, doc: 'Unreleased inbound QoS 2 messages per v3 client; 0 = unlimited.' },
  { key: 'shared_subscription', format: Formats.bool, default: true, doc: 'Older RMQTT per-listener switch.', mapped: false },
  { key: 'retain_available', format: Formats.bool, default: true, doc: 'RMQTT key removed in 0.11.', mapped: false },
  { key: 'limit_subscription', format: Formats.bool, default: false, doc: 'Enable $limit/ and $exclusive/ filters.' },
  { key: 'delayed_publish', format: Formats.bool, default: false, doc: 'Enable $delayed/ topics.' },
  { key: 'proxy_protocol', format: Formats.bool, default: false, doc: 'Expect a PROXY protocol v1/v2 header.' },
  { key: 'proxy_protocol_timeout', format: Formats.duration, default: '5s', doc: 'Time allowed for the PROXY header.' },
  { key: 'max_conn_rate', format: Formats.uint, default: 0, doc: 'New connections per second; 0 = off.' },
  { key: 'max_message_rate', format: Formats.rate, default: 0, doc: 'Inbound PUBLISH rate per client, "burst,period"; 0 = off.' },
  { key: 'max_byte_rate', format: Formats.rate, default: 0, doc: 'Inbound bytes per client, "burst,period" ("1MB,1s"); 0 = off.' },
  { key: 'idle_timeout', format: Formats.duration, default: '90s', doc: 'RMQTT QUIC idle timeout.', mapped: false },
  { key: 'cert', format: Formats.string, default: null, doc: 'Server certificate chain (PEM file).', types: TLS_TYPES },
  { key: 'key', format: Formats.string, default: null, doc: 'Server private key (PEM file).', types: TLS_TYPES },
  { key: 'cross_certificate', format: Formats.bool, default: false, doc: 'Require and verify client certificates (mutual TLS).', types: TLS_TYPES },
  { key: 'client_ca_certs', format: Formats.string, default: null, doc: 'CA bundle for client certificates.', types: TLS_TYPES },
  { key: 'cert_cn_as_username', format: Formats.bool, default: false, doc: "Use the client certificate's CN as username.", types: TLS_TYPES },
  { key: 'cert_subject_dn_as_username', format: Formats.bool, default: false, doc: "RMQTT: client certificate's subject DN as username.", types: TLS_TYPES, mapped: false },
  { key: 'collect_cert_info', format: Formats.bool, default: false, doc: 'RMQTT: attach certificate details to the connection.', types: TLS_TYPES, mapped: false },
  { key: 'ws_path', format: Formats.string, default: null, doc: 'rmqtt-ts: accept WebSocket upgrades only on this path; any path when unset.', types: WS_TYPES },
];

export const LISTENER_KEY_NAMES: ReadonlySet<string> = new Set(LISTENER_KEYS.map((k) => k.key));

function appliesTo(k: ListenerKey, type: AnyListenerType): boolean {
  return k.types === undefined || k.types.includes(type);
}

/** The convict subtree of one listener. */
export function listenerSchema(type: AnyListenerType): Record<string, unknown> {
  const schema: Record<string, unknown> = {};
  for (const k of LISTENER_KEYS) {
    if (!appliesTo(k, type)) continue;
    const value = typeof k.default === 'function' ? (k.default as (t: AnyListenerType) => unknown)(type) : k.default;
    schema[k.key] = { doc: k.doc, format: k.format, default: value, ...(value === null ? { nullable: true } : {}), ...(k.sensitive === true ? { sensitive: true } : {}) };
  }
  return schema;
}

/** Listener types a key is valid for, when it is a listener key at all. */
export function listenerKeyTypes(key: string): readonly AnyListenerType[] | undefined {
  const k = LISTENER_KEYS.find((x) => x.key === key);
  return k === undefined ? undefined : (k.types ?? LISTENER_TYPES);
}

/** snake_case → camelCase, with the unit of durations in the name (handshake_timeout → handshakeTimeoutMs). */
export function configPropName(k: ListenerKey): string {
  const camel = k.key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
  return camel + (k.format === Formats.duration ? 'Ms' : k.format === Formats.durationSeconds ? 'S' : '');
}

/** The validated subtree of one listener → ListenerConfig. */
export function toListenerConfig(type: ListenerType, name: string, props: Record<string, unknown>): ListenerConfig {
  const out: Record<string, unknown> = { name: `${type}.${name}`, type };
  for (const k of LISTENER_KEYS) {
    if (k.mapped === false) continue;
    let value = appliesTo(k, type) ? props[k.key] : typeof k.default === 'boolean' ? k.default : undefined;
    // Unset optional strings (cert, ws_path) are left out; an off rate stays null.
    if (value === undefined || (value === null && k.default === null)) continue;
    if (k.toConfig !== undefined) value = k.toConfig(value);
    out[configPropName(k)] = value;
  }
  return out as unknown as ListenerConfig;
}
