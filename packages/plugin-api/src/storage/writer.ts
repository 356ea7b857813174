/**
 * Write-behind for a KvStore: puts and deletes collect during a tick and go out as one batch, one batch
 * at a time (the next collects meanwhile). A batch that fails is kept — newer writes to the same keys
 * replace its — and tried again with backoff (100 ms doubling to 5 s); the outage is logged once when
 * it starts and once when it ends, so a Redis that goes away does not flood the log or lose writes.
 */
import type { Logger } from '../services.js';
import { KvBatch, type KvStore } from './kv.js';

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

export class KvWriter {
  #next = new KvBatch();
  /** Resolvers of those waiting for `#next`. */
  #nextWaiters: Array<() => void> = [];
  #writing = false;
  #scheduled = false;
  #down = false;
  #retryMs = RETRY_MIN_MS;
  #timer: NodeJS.Timeout | undefined;
  /** Failed writes, counted (for a plugin's attributes). */
  errors = 0;
  readonly #kv: KvStore;
  readonly #logger: Logger;
  readonly #what: string;

  constructor(kv: KvStore, logger: Logger, what: string) {
    this.#kv = kv;
    this.#logger = logger;
    this.#what = what;
  }

  /** Whether the backend is failing right now. */
  get down(): boolean {
    return this.#down;
  }

  put(key: string, value: Buffer): void {
    this.#next.put(key, value);
    this.#schedule();
  }

  del(key: string): void {
    this.#next.del(key);
    this.#schedule();
  }

  /** Resolves once everything put or deleted so far is written (waits out an outage). */
  written(): Promise<void> {
    if (this.#next.size === 0 && !this.#writing) return Promise.resolve();
    return new Promise((resolve) => {
      this.#nextWaiters.push(resolve);
      this.#schedule();
    });
  }

  /** Stop retrying (the plugin stops); what is still unwritten is logged. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#next.size > 0) this.#logger.error({ unwritten: this.#next.size, store: this.#kv.description }, `${this.#what}: writes lost at close (the store was away)`);
  }

  #schedule(): void {
    if (this.#scheduled || this.#writing || this.#timer !== undefined) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#write();
    });
  }

  #write(): void {
    if (this.#writing || this.#timer !== undefined) return;
    const batch = this.#next;
    const waiters = this.#nextWaiters;
    if (batch.size === 0) {
      this.#nextWaiters = [];
      for (const w of waiters) w();
      return;
    }
    this.#next = new KvBatch();
    this.#nextWaiters = [];
    this.#writing = true;
    this.#kv.write(batch.ops()).then(
      () => {
        this.#writing = false;
        if (this.#down) {
          this.#down = false;
          this.#retryMs = RETRY_MIN_MS;
          this.#logger.info({ store: this.#kv.description }, `${this.#what}: store is back`);
        }
        for (const w of waiters) w();
        if (this.#next.size > 0 || this.#nextWaiters.length > 0) this.#write();
      },
      (err: unknown) => {
        this.#writing = false;
        this.errors++;
        if (!this.#down) {
          this.#down = true;
          this.#logger.error({ err: (err as Error).message, store: this.#kv.description }, `${this.#what}: write failed; retrying`);
        }
        // the failed writes go under the newer ones, and their waiters wait on
        batch.merge(this.#next);
        this.#next = batch;
        this.#nextWaiters = [...waiters, ...this.#nextWaiters];
        const wait = this.#retryMs;
        this.#retryMs = Math.min(RETRY_MAX_MS, this.#retryMs * 2);
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#write();
        }, wait);
        this.#timer.unref();
      },
    );
  }
}
