/** Config of the web-hook plugin: RMQTT's rmqtt-web-hook.toml keys. */
import { isValidTopicFilter, type ConfigSchema } from '@rmqtt-ts/plugin-api';

/** The events, by RMQTT's names. */
export const EVENTS = [
  'session_created',
  'session_terminated',
  'session_subscribed',
  'session_unsubscribed',
  'client_connect',
  'client_connack',
  'client_connected',
  'client_disconnected',
  'client_subscribe',
  'client_unsubscribe',
  'message_publish',
  'message_delivered',
  'message_acked',
  'message_dropped',
  'offline_message',
] as const;
export type EventName = (typeof EVENTS)[number];

export interface Rule {
  action: string;
  urls?: string[];
  topics?: string[];
}

export interface WebHookConfig {
  queue_capacity: number;
  concurrency_limit: number;
  urls: string[];
  http_urls: string[];
  /** ms */
  http_timeout: number;
  /** ms */
  retry_max_elapsed_time: number;
  retry_multiplier: number;
  /** ms */
  retry_initial_interval: number;
  rule: Partial<Record<EventName, Rule[]>>;
  worker_threads: number;
}

function checkUrl(u: unknown, where: string): void {
  if (typeof u !== 'string') throw new Error(`${where}: expected a URL string, got ${JSON.stringify(u)}`);
  let url: URL;
  try {
    url = new URL(u.trim());
  } catch {
    throw new Error(`${where}: "${u}" is not a URL`);
  }
  if (!['http:', 'https:', 'file:'].includes(url.protocol)) throw new Error(`${where}: expected http://, https:// or file://, got "${u}"`);
}

function urlList(value: unknown): void {
  if (!Array.isArray(value)) throw new Error('expected a list of URLs such as ["http://127.0.0.1:5656/hook", "file:///var/log/hook.log"]');
  value.forEach((u, i) => checkUrl(u, `[${i}]`));
}

function rules(value: unknown): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('expected a table of events, such as rule.client_connected = [{ action = "client_connected" }]');
  for (const [event, list] of Object.entries(value)) {
    if (!(EVENTS as readonly string[]).includes(event)) throw new Error(`unknown event "${event}" (expected one of ${EVENTS.join(', ')})`);
    if (!Array.isArray(list)) throw new Error(`${event}: expected a list of rules such as [{ action = "${event}" }]`);
    list.forEach((r: unknown, i) => {
      const at = `${event}[${i}]`;
      if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new Error(`${at}: expected { action, urls?, topics? }`);
      const rule = r as Record<string, unknown>;
      for (const k of Object.keys(rule)) if (!['action', 'urls', 'topics'].includes(k)) throw new Error(`${at}: unknown key "${k}" (expected action, urls, topics)`);
      if (typeof rule['action'] !== 'string' || rule['action'] === '') throw new Error(`${at}: action: expected a name such as "${event}"`);
      if (rule['urls'] !== undefined) {
        if (!Array.isArray(rule['urls'])) throw new Error(`${at}: urls: expected a list of URLs`);
        rule['urls'].forEach((u, j) => checkUrl(u, `${at}: urls[${j}]`));
      }
      if (rule['topics'] !== undefined) {
        if (!Array.isArray(rule['topics'])) throw new Error(`${at}: topics: expected a list of topic filters`);
        for (const t of rule['topics']) if (typeof t !== 'string' || !isValidTopicFilter(t)) throw new Error(`${at}: topics: "${String(t)}" is not a topic filter`);
      }
    });
  }
}

export const configSchema: ConfigSchema = {
  queue_capacity: { doc: 'Events that may wait for delivery; more are dropped (counted and logged).', format: 'integer 1..100000000', default: 1000000 },
  concurrency_limit: { doc: 'Deliveries at once.', format: 'integer 1..100000', default: 128 },
  urls: { doc: 'Default targets of the rules: http://, https:// (POST JSON) or file:// (one JSON line per event).', format: urlList, default: [] },
  http_urls: { doc: 'Old name of urls (added to them).', format: urlList, default: [] },
  http_timeout: { doc: 'Timeout of one HTTP attempt.', format: 'duration', default: '5s' },
  retry_max_elapsed_time: { doc: 'A failing delivery is retried until this long after its first attempt.', format: 'duration', default: '60s' },
  retry_multiplier: { doc: 'Each wait between retries is the previous one times this.', format: 'number [1..100]', default: 2.5 },
  retry_initial_interval: { doc: 'rmqtt-ts: the first wait after a failure.', format: 'duration', default: '500ms' },
  rule: { doc: 'Per event: [{ action, urls?, topics? }].', format: rules, default: {} },
  worker_threads: { doc: 'Threads of an own runtime.', format: 'nat', default: 3, notImplemented: true },
};

/** The targets of a rule: its own urls, else the defaults (urls and http_urls). */
export function ruleUrls(rule: Rule, config: WebHookConfig): string[] {
  if (rule.urls !== undefined && rule.urls.length > 0) return rule.urls.map((u) => u.trim());
  return [...config.urls, ...config.http_urls].map((u) => u.trim());
}
