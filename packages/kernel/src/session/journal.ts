/**
 * Changes to persistent sessions, batched per tick and handed to the SessionStore in force. Only
 * persistent sessions (expiry > 0) produce changes; clean sessions cost nothing here.
 *
 * With a durable store (one a plugin provides), what the broker tells a client waits for the write
 * that makes it true: `written()` gives the promise of the batch holding every change recorded so far,
 * and the handlers send PUBACK, PUBREC, PUBCOMP, PUBREL (outbound QoS 2), SUBACK and UNSUBACK only once
 * it resolves. One promise serves every change of a batch. Each tick's batch is handed over at once,
 * even while earlier ones are still being written: the store turns it into writes while the previous
 * write is under way, writes in order, and resolves in order (the SessionStore contract), so turning
 * changes into writes overlaps the writing.
 *
 * A failed write is not dropped: the store keeps the changes it took. The journal stops handing over
 * new batches (they collect), and asks the store to write what it holds — `apply([])` — with backoff
 * (100 ms doubling to 5 s) until it succeeds; then everything waiting is acknowledged and the
 * collected changes follow, in order. Meanwhile QoS 0 and clean sessions go on. The outage shows in
 * the log (once when it starts, once when it ends), in the `session.storage.errors` counter and in the
 * `session_storage_down` / `session_storage_pending` gauges.
 */
import type { Logger, SessionChange } from '@rmqtt-ts/plugin-api';
import type { ExtensionSlots } from '../extensions/slots.js';
import { C, type BrokerMetrics } from '../metrics/metrics.js';

interface Batch {
  readonly changes: SessionChange[];
  /** Made when someone waits for this batch. */
  done: { promise: Promise<void>; resolve: () => void } | undefined;
}

const NOTHING: readonly SessionChange[] = Object.freeze([]);
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

function waitable(b: Batch): Promise<void> {
  if (b.done === undefined) {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    b.done = { promise, resolve };
  }
  return b.done.promise;
}

export class SessionJournal {
  /** The batch collecting this tick's changes (and, while the store is down, everything since). */
  #current: Batch | null = null;
  /** Batches handed to the store and not yet written, oldest first. */
  readonly #unwritten: Batch[] = [];
  #scheduled = false;
  #down = false;
  #seq = 0;
  #retryMs = RETRY_MIN_MS;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Resolves the waiters of `flushed()` when nothing is left to write. */
  #idle: Array<() => void> = [];
  readonly #ext: ExtensionSlots;
  readonly #logger: Logger;
  readonly #metrics: BrokerMetrics;

  constructor(ext: ExtensionSlots, logger: Logger, metrics: BrokerMetrics) {
    this.#ext = ext;
    this.#logger = logger;
    this.#metrics = metrics;
  }

  /** Whether acknowledgements wait for writes: the store is a plugin's, not the kernel's memory. */
  get durable(): boolean {
    return this.#ext.owner('sessionStore') !== undefined;
  }

  /** Changes recorded since start: a handler compares it before and after to learn whether it recorded any. */
  get seq(): number {
    return this.#seq;
  }

  record(change: SessionChange): void {
    this.#seq++;
    let b = this.#current;
    if (b === null) b = this.#current = { changes: [], done: undefined };
    b.changes.push(change);
    this.#metrics.gauges.session_storage_pending.inc();
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#flush);
    }
  }

  /**
   * A promise that resolves once every change recorded so far is written, or undefined when there is
   * nothing to wait for (no durable store, or everything already written).
   */
  written(): Promise<void> | undefined {
    if (!this.durable) return undefined;
    if (this.#current !== null) return waitable(this.#current);
    const last = this.#unwritten[this.#unwritten.length - 1];
    return last === undefined ? undefined : waitable(last);
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    this.#handOver();
  };

  /** Give the collected batch to the store (not while it is down: then the retry goes first). */
  #handOver(): void {
    const b = this.#current;
    if (b === null || this.#down) return;
    this.#current = null;
    this.#unwritten.push(b);
    let r: unknown;
    try {
      r = this.#ext.sessionStore.apply(b.changes);
    } catch (err) {
      this.#failed(err);
      return;
    }
    if (r instanceof Promise) r.then(() => this.#written(b), (err: unknown) => this.#failed(err));
    else this.#written(b);
  }

  /** A batch is written; the store resolves in order, so every batch before it is too. */
  #written(b: Batch): void {
    const i = this.#unwritten.indexOf(b);
    if (i < 0) return; // already settled by a successful retry
    for (const done of this.#unwritten.splice(0, i + 1)) this.#settle(done);
    this.#checkIdle();
  }

  #settle(b: Batch): void {
    this.#metrics.gauges.session_storage_pending.dec(b.changes.length);
    b.done?.resolve();
  }

  #checkIdle(): void {
    if (this.#unwritten.length > 0 || this.#current !== null || this.#down) return;
    const idle = this.#idle;
    this.#idle = [];
    for (const r of idle) r();
  }

  #failed(err: unknown): void {
    this.#metrics.counters[C['session.storage.errors']]!++;
    if (!this.#down) {
      this.#down = true;
      this.#metrics.gauges.session_storage_down.set(1);
      this.#logger.error({ err }, 'session store write failed: acknowledgements to persistent sessions wait until it is written; retrying');
    } else {
      this.#logger.debug({ err }, 'session store write failed again');
    }
    if (this.#retryTimer !== undefined) return;
    const wait = this.#retryMs;
    this.#retryMs = Math.min(RETRY_MAX_MS, this.#retryMs * 2);
    this.#retryTimer = setTimeout(this.#retry, wait);
    this.#retryTimer.unref();
  }

  /** Ask the store to write what it holds; on success everything handed over so far is written. */
  readonly #retry = (): void => {
    this.#retryTimer = undefined;
    const upTo = this.#unwritten.length;
    let r: unknown;
    try {
      r = this.#ext.sessionStore.apply(NOTHING);
    } catch (err) {
      this.#failed(err);
      return;
    }
    const ok = (): void => {
      for (const b of this.#unwritten.splice(0, upTo)) this.#settle(b);
      this.#down = false;
      this.#retryMs = RETRY_MIN_MS;
      this.#metrics.gauges.session_storage_down.set(0);
      this.#logger.info({ pending: this.#metrics.gauges.session_storage_pending.count }, 'session store is back: catching up');
      this.#handOver();
      this.#checkIdle();
    };
    if (r instanceof Promise) r.then(ok, (err: unknown) => this.#failed(err));
    else ok();
  };

  /**
   * Resolves once everything recorded so far was written. While the store is down this waits for it
   * (shutdown gives up after `timeoutMs` and reports what stayed unwritten).
   */
  async flushed(timeoutMs = Infinity): Promise<void> {
    this.#handOver();
    if (this.#unwritten.length === 0 && this.#current === null && !this.#down) return;
    const idle = new Promise<void>((r) => this.#idle.push(r));
    if (timeoutMs === Infinity) return idle;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => {
      timer = setTimeout(() => {
        this.#logger.error({ pending: this.#metrics.gauges.session_storage_pending.count }, 'session store did not take the last changes before shutdown');
        r();
      }, timeoutMs);
    });
    await Promise.race([idle, timeout]);
    clearTimeout(timer);
  }
}
