/** Config of the HTTP API plugin: RMQTT's rmqtt-http-api.toml keys. */
import type { ConfigSchema } from '@rmqtt-ts/plugin-api';

export interface HttpApiConfig {
  /** The most rows a list endpoint returns (`_limit` is capped to it). */
  max_row_limit: number;
  http_laddr: { host: string; port: number };
  /** When set, every /api/v1 request needs `Authorization: Bearer <token>`. */
  http_bearer_token: string | null;
  http_reuseaddr: boolean;
  http_reuseport: boolean;
  http_request_log: boolean;
  /** ms */
  metrics_sample_interval: number;
  message_type: number;
  /** ms; 0 = HTTP publishes never expire. */
  message_expiry_interval: number;
  /** ms */
  prometheus_metrics_cache_interval: number;
  /** Largest request body in bytes. */
  http_body_limit: number;
  dashboard_static_dir: string | null;
  storage: {
    type: 'none' | 'redb' | 'sled' | 'redis' | 'redis-cluster';
    redb: { path: string };
    sled: { path: string; cache_capacity: number };
    redis: { url: string; prefix: string };
    'redis-cluster': { urls: string[]; prefix: string };
  };
  flush_interval: number;
  history_retention: number;
}

export const configSchema: ConfigSchema = {
  max_row_limit: { doc: 'The most rows a list endpoint returns.', format: 'integer 1..1000000', default: 10000 },
  http_laddr: { doc: 'Address the HTTP API listens on.', format: 'addr', default: '0.0.0.0:6060' },
  http_bearer_token: {
    doc: 'When set, requests under /api/v1 need the header "Authorization: Bearer <token>" (401 otherwise).',
    format: 'string',
    default: null,
    nullable: true,
    sensitive: true,
  },
  http_reuseaddr: { doc: 'SO_REUSEADDR on the listening socket (Node.js always sets it).', format: 'bool', default: true },
  http_reuseport: { doc: 'SO_REUSEPORT on the listening socket.', format: 'bool', default: false, notImplemented: true },
  http_request_log: { doc: 'Log every request (method, URL, status, time) at info level.', format: 'bool', default: false },
  metrics_sample_interval: { doc: 'How long /stats and /metrics answers are reused.', format: 'duration', default: '5s', notImplemented: true },
  message_type: { doc: 'Message type of node-to-node API calls in a cluster.', format: 'nat', default: 99, notImplemented: true },
  message_expiry_interval: { doc: 'Expiry of messages published through POST /mqtt/publish (0 = none).', format: 'duration', default: '5m' },
  prometheus_metrics_cache_interval: { doc: 'How long the /metrics/prometheus text is reused.', format: 'duration', default: '5s' },
  http_body_limit: { doc: 'rmqtt-ts: largest request body; a larger one is answered 413.', format: 'size', default: '1MB' },
  dashboard_static_dir: { doc: 'Directory of a dashboard to serve at /dashboard/.', format: 'string', default: null, nullable: true, notImplemented: true },
  storage: {
    type: {
      doc: 'Backend for /stats/history and /metrics/history (none: history off).',
      format: ['none', 'redb', 'sled', 'redis', 'redis-cluster'],
      default: 'none',
      notImplemented: true,
    },
    redb: { path: { doc: 'redb file.', format: String, default: '', notImplemented: true } },
    sled: {
      path: { doc: 'sled directory.', format: String, default: '', notImplemented: true },
      cache_capacity: { doc: 'sled cache size.', format: 'size', default: '1G', notImplemented: true },
    },
    redis: {
      url: { doc: 'Redis URL.', format: String, default: 'redis://127.0.0.1:6379/', sensitive: true, notImplemented: true },
      prefix: { doc: 'Key prefix.', format: String, default: 'http-api-history-{node}', notImplemented: true },
    },
    'redis-cluster': {
      urls: { doc: 'Redis Cluster URLs.', format: Array, default: [], sensitive: true, notImplemented: true },
      prefix: { doc: 'Key prefix.', format: String, default: 'http-api-history-{node}', notImplemented: true },
    },
  },
  flush_interval: { doc: 'How often history snapshots are written.', format: 'duration', default: '5s', notImplemented: true },
  history_retention: { doc: 'How long history snapshots are kept.', format: 'duration', default: '7d', notImplemented: true },
};
