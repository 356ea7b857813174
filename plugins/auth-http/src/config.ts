/** Config of the auth-http plugin: RMQTT's rmqtt-auth-http.toml keys. */
import type { ConfigSchema } from '@rmqtt-ts/plugin-api';

export interface HttpReq {
  url: string;
  method: 'get' | 'post' | 'put';
  headers: Record<string, string>;
  params: Record<string, string>;
}

export interface AuthHttpConfig {
  /** ms */
  http_timeout: number;
  http_headers: Record<string, string>;
  http_retry: { times: number; interval: number; backoff: number };
  disconnect_if_pub_rejected: boolean;
  disconnect_if_expiry: boolean;
  deny_if_error: boolean;
  priority: number;
  http_auth_req: HttpReq | null;
  http_acl_req: HttpReq | null;
}

function stringTable(name: string): (value: unknown) => void {
  return function table(value: unknown): void {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`expected a table of strings such as { ${name} = "…" }`);
    for (const [k, v] of Object.entries(value)) if (typeof v !== 'string') throw new Error(`${k}: expected a string`);
  };
}

/** An http_*_req table: url and method required when the table is there; the table omitted = off. */
function request(value: unknown): void {
  if (value === null) return;
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error('expected a table with url, method, headers and params');
  const r = value as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!['url', 'method', 'headers', 'params'].includes(k)) throw new Error(`unknown key "${k}" (expected url, method, headers, params)`);
  if (typeof r['url'] !== 'string') throw new Error('url: expected an http:// or https:// URL');
  let url: URL;
  try {
    url = new URL(r['url']);
  } catch {
    throw new Error(`url: "${r['url']}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`url: expected http:// or https://, got "${url.protocol}"`);
  const method = r['method'] ?? 'post';
  if (typeof method !== 'string' || !['get', 'post', 'put'].includes(method.toLowerCase())) throw new Error(`method: expected get, post or put, got ${JSON.stringify(method)}`);
  if (r['headers'] !== undefined) stringTable('content-type')(r['headers']);
  if (r['params'] !== undefined) stringTable('clientid')(r['params']);
  const ct = (r['headers'] as Record<string, string> | undefined)?.['content-type'];
  if (ct !== undefined && !/^application\/(x-www-form-urlencoded|json)\b/i.test(ct)) {
    throw new Error(`headers.content-type: expected application/x-www-form-urlencoded or application/json, got "${ct}"`);
  }
}

export const configSchema: ConfigSchema = {
  http_timeout: { doc: 'Timeout of one HTTP request.', format: 'duration', default: '5s' },
  http_headers: { doc: 'Headers sent with every request.', format: stringTable('accept'), default: {} },
  http_retry: {
    times: { doc: 'Retries after a failed request (connection error, timeout, 5xx).', format: 'nat', default: 3 },
    interval: { doc: 'Wait before the first retry.', format: 'duration', default: '1s' },
    backoff: { doc: 'Each further wait is the previous one times this.', format: 'number [1..100]', default: 2.0 },
  },
  disconnect_if_pub_rejected: { doc: 'Close the connection of a client whose PUBLISH is denied.', format: 'bool', default: true },
  disconnect_if_expiry: { doc: 'Disconnect a client once the expire_at of its authentication has passed.', format: 'bool', default: false },
  deny_if_error: { doc: 'A request that fails (after its retries) denies; otherwise it passes on (ignore).', format: 'bool', default: true },
  priority: { doc: 'Priority of the hooks (higher runs first; the file ACL is 10). Read when the broker starts.', format: 'nat', default: 100 },
  http_auth_req: { doc: 'The authentication request (omit to authenticate no one here).', format: request, default: null, nullable: true },
  http_acl_req: { doc: 'The ACL request (omit to check no publish or subscribe here).', format: request, default: null, nullable: true },
};
