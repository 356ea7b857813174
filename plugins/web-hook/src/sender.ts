/**
 * Delivering one event body to its URLs: `http(s)://` by POST (JSON, undici), retried with exponential
 * backoff until `retry_max_elapsed_time` has passed; `file://` by appending one line to the file.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';

export interface SendOptions {
  timeoutMs: number;
  /** Retries stop once this long has passed since the first attempt. */
  maxElapsedMs: number;
  /** First wait after a failure. */
  initialIntervalMs: number;
  multiplier: number;
  /** Aborts waiting retries (the plugin stops). */
  signal: AbortSignal;
}

export interface SendResult {
  ok: boolean;
  attempts: number;
  error?: string;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

export class Sender {
  /** Kept-alive connections to the hook servers. */
  readonly #agent = new Agent({ keepAliveTimeout: 10_000, connections: 256 });
  /** Directories already made for file:// targets. */
  readonly #dirs = new Set<string>();

  async #post(url: string, body: string, o: SendOptions): Promise<void> {
    const r = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      dispatcher: this.#agent,
      signal: AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs)]),
    });
    await r.body.dump();
    if (r.statusCode < 200 || r.statusCode >= 300) throw new Error(`HTTP ${r.statusCode}`);
  }

  async #append(url: string, body: string): Promise<void> {
    const path = fileURLToPath(url);
    const dir = dirname(path);
    if (!this.#dirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.#dirs.add(dir);
    }
    await appendFile(path, `${body}\n`);
  }

  /** Deliver to one URL, retrying until it succeeds or the time for retries is up. */
  async send(url: string, body: string, o: SendOptions): Promise<SendResult> {
    const started = Date.now();
    let wait = o.initialIntervalMs;
    for (let attempt = 1; ; attempt++) {
      try {
        if (url.startsWith('file:')) await this.#append(url, body);
        else await this.#post(url, body, o);
        return { ok: true, attempts: attempt };
      } catch (err) {
        const e = err as Error;
        const error = e.name === 'TimeoutError' ? 'timed out' : e.message;
        if (o.signal.aborted || Date.now() - started + wait > o.maxElapsedMs) return { ok: false, attempts: attempt, error };
        await sleep(wait, o.signal);
        wait *= o.multiplier;
      }
    }
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}
