/**
 * One authentication or ACL question to an HTTP server: placeholders filled, the request made with
 * undici (GET: query string; POST/PUT: form or JSON body), retried with backoff when it fails, and the
 * answer read the way RMQTT reads it.
 */
import { request } from 'undici';
import type { HttpReq } from './config.js';

export type Verdict = 'allow' | 'deny' | 'ignore';

/** A preset ACL entry of a JSON answer: `{permission, action, topic, qos?, retain?}`. */
export interface PresetAcl {
  permission: 'allow' | 'deny';
  action: 'publish' | 'subscribe' | 'all';
  topic: string;
  qos?: number[];
  retain?: boolean;
}

export interface Answer {
  verdict: Verdict;
  superuser: boolean;
  /** ms since the epoch; undefined = no expiry. */
  expireAt: number | undefined;
  /** ms the answer may be reused (-1: for the connection's lifetime); undefined = not cached. */
  cacheMs: number | undefined;
  acl: PresetAcl[] | undefined;
  /** Why the answer is "ignore" or "deny" when the request itself failed. */
  error?: string;
}

export interface RequestOptions {
  timeoutMs: number;
  headers: Record<string, string>;
  retry: { times: number; interval: number; backoff: number };
  denyIfError: boolean;
  /** Stops retrying (the plugin stopped or the broker is closing). */
  signal?: AbortSignal;
}

/** Fill `%x` placeholders; `%%` is a literal percent sign. Unknown placeholders stay as written. */
export function fill(template: string, values: Record<string, string>): string {
  return template.replace(/%(.)/g, (whole, ch: string) => (ch === '%' ? '%' : (values[ch] ?? whole)));
}

function isJson(headers: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === 'content-type') return /application\/json/i.test(v);
  return false;
}

function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

class Retryable extends Error {}

/** Read a 2xx body: text allow/deny/ignore (other text allows), or JSON {result, superuser, expire_at, acl}. */
export function readAnswer(status: number, headers: Record<string, string | string[] | undefined>, body: string): Answer {
  const cache = headerValue(headers, 'x-cache');
  const cacheMs = cache !== undefined && /^-?\d+$/.test(cache.trim()) ? Number(cache.trim()) : undefined;
  const superHeader = headerValue(headers, 'x-superuser') !== undefined;
  const base: Answer = { verdict: 'allow', superuser: superHeader, expireAt: undefined, cacheMs, acl: undefined };
  if (status < 200 || status >= 300) return { ...base, verdict: 'ignore', error: `HTTP ${status}` };
  const text = body.trim();
  if (text.startsWith('{')) {
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return base;
    }
    const r = typeof j['result'] === 'string' ? j['result'].toLowerCase() : 'allow';
    return {
      ...base,
      verdict: r === 'deny' ? 'deny' : r === 'ignore' ? 'ignore' : 'allow',
      superuser: superHeader || j['superuser'] === true,
      expireAt: typeof j['expire_at'] === 'number' ? j['expire_at'] * 1000 : undefined,
      acl: Array.isArray(j['acl']) ? (j['acl'] as unknown[]).filter(isPreset) : undefined,
    };
  }
  const t = text.toLowerCase();
  return { ...base, verdict: t === 'deny' ? 'deny' : t === 'ignore' ? 'ignore' : 'allow' };
}

function isPreset(v: unknown): v is PresetAcl {
  if (typeof v !== 'object' || v === null) return false;
  const p = v as Record<string, unknown>;
  return (p['permission'] === 'allow' || p['permission'] === 'deny') && (p['action'] === 'publish' || p['action'] === 'subscribe' || p['action'] === 'all') && typeof p['topic'] === 'string';
}

/** Ask once (with retries). Never throws: a failure is an answer ("deny" or "ignore" by deny_if_error). */
export async function ask(req: HttpReq, values: Record<string, string>, o: RequestOptions): Promise<Answer> {
  const params: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.params)) params[k] = fill(v, values);
  const headers: Record<string, string> = { ...o.headers, ...req.headers };
  const method = req.method.toUpperCase() as 'GET' | 'POST' | 'PUT';
  const url = new URL(req.url);
  let body: string | undefined;
  if (method === 'GET') {
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  } else if (isJson(headers)) {
    body = JSON.stringify(params);
  } else {
    body = new URLSearchParams(params).toString();
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['content-type'] = 'application/x-www-form-urlencoded';
  }
  let wait = o.retry.interval;
  let lastError = '';
  for (let attempt = 0; attempt <= o.retry.times; attempt++) {
    if (attempt > 0) {
      await sleep(wait, o.signal);
      wait *= o.retry.backoff;
    }
    if (o.signal?.aborted) break;
    try {
      const signal = o.signal === undefined ? AbortSignal.timeout(o.timeoutMs) : AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs)]);
      const r = await request(url, { method, headers, body, signal });
      const text = await r.body.text();
      if (r.statusCode >= 500) throw new Retryable(`HTTP ${r.statusCode}`);
      return readAnswer(r.statusCode, r.headers, text);
    } catch (err) {
      lastError = err instanceof Retryable ? err.message : `${(err as Error).name === 'TimeoutError' ? 'timed out' : (err as Error).message}`;
    }
  }
  return { verdict: o.denyIfError ? 'deny' : 'ignore', superuser: false, expireAt: undefined, cacheMs: undefined, acl: undefined, error: lastError };
}
