/**
 * Changes to persistent sessions, batched per tick and written to the SessionStore in force, in order.
 * Only persistent sessions (expiry > 0) produce changes; clean sessions cost nothing here.
 *
 * With a durable store (one a plugin provides), what the broker tells a client waits for the write
 * that makes it true: `written()` gives the promise of the batch holding every change recorded so far,
 * and the handlers send PUBACK, PUBREC, PUBCOMP, PUBREL (outbound QoS 2), SUBACK, UNSUBACK and a
 * resuming CONNACK only once it resolves. One promise serves every change of a batch, and batches are
 * group commits: while one is written the next one collects.
 *
 * A failed write is not dropped: the store keeps the changes it took, the batch stays at the head of
 * the line, and the store is asked to write again with backoff (100 ms doubling to 5 s) while later
 * batches queue behind it, so it catches up in order once it is back. Meanwhile nothing that waits on it is acknowledged; QoS 0 and clean sessions
 * go on. The outage shows in the log (once when it starts, once when it ends), in the
 * `session.storage.errors` counter and in the `session_storage_down` / `session_storage_pending` gauges.
 */
import type { Logger, SessionChange } from '@rmqtt-ts/plugin-api';
import type { ExtensionSlots } from '../extensions/slots.js';
import { C, type BrokerMetrics } from '../metrics/metrics.js';

interface Batch {
  changes: SessionChange[];
  /** Handed to the store once: a retry after a failure only asks it to write what it holds. */
  taken: boolean;
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
  /** The batch collecting this tick's changes. */
  #current: Batch | null = null;
  /** The batch being written (or retried): at most one. */
  readonly #queue: Batch[] = [];
  #writing = false;
  #scheduled = false;
  #down = false;
  #seq = 0;
  #retryMs = RETRY_MIN_MS;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Resolves the waiters of `flushed()` when the line is empty. */
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

  /** Whether the store is failing right now. */
  get down(): boolean {
    return this.#down;
  }

  /** Changes recorded since start: a handler compares it before and after to learn whether it recorded any. */
  get seq(): number {
    return this.#seq;
  }

  record(change: SessionChange): void {
    this.#seq++;
    let b = this.#current;
    if (b === null) b = this.#current = { changes: [], taken: false, done: undefined };
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
    const last = this.#queue[this.#queue.length - 1];
    return last === undefined ? undefined : waitable(last);
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    this.#write();
  };

  #write(): void {
    if (this.#writing || this.#retryTimer !== undefined) return;
    // while a batch is written (or retried), changes collect in #current: the next write takes them all
    if (this.#queue.length === 0 && this.#current !== null) {
      this.#queue.push(this.#current);
      this.#current = null;
    }
    const b = this.#queue[0];
    if (b === undefined) {
      const idle = this.#idle;
      this.#idle = [];
      for (const r of idle) r();
      return;
    }
    this.#writing = true;
    const store = this.#ext.sessionStore;
    let r: unknown;
    try {
      const changes = b.taken ? NOTHING : b.changes;
      b.taken = true;
      r = store.apply(changes);
    } catch (err) {
      this.#failed(err);
      return;
    }
    if (r instanceof Promise) r.then(() => this.#written(), (err: unknown) => this.#failed(err));
    else this.#written();
  }

  #written(): void {
    const b = this.#queue.shift()!;
    this.#writing = false;
    this.#metrics.gauges.session_storage_pending.dec(b.changes.length);
    if (this.#down) {
      this.#down = false;
      this.#retryMs = RETRY_MIN_MS;
      this.#metrics.gauges.session_storage_down.set(0);
      this.#logger.info({ pending: this.#metrics.gauges.session_storage_pending.count }, 'session store is back: catching up');
    }
    b.done?.resolve();
    // the next write after one turn of the event loop: the connections this write released read and
    // handle their next packets first, and their changes join it (larger batches, fewer writes)
    this.#writing = true;
    setImmediate(this.#afterTurn);
  }

  readonly #afterTurn = (): void => {
    this.#writing = false;
    this.#write();
  };

  #failed(err: unknown): void {
    this.#writing = false;
    this.#metrics.counters[C['session.storage.errors']]!++;
    if (!this.#down) {
      this.#down = true;
      this.#metrics.gauges.session_storage_down.set(1);
      this.#logger.error({ err }, 'session store write failed: acknowledgements to persistent sessions wait until it is written; retrying');
    } else {
      this.#logger.debug({ err }, 'session store write failed again');
    }
    // the failed batch stays first (the store keeps what it could not write); later ones wait behind it
    const wait = this.#retryMs;
    this.#retryMs = Math.min(RETRY_MAX_MS, this.#retryMs * 2);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#write();
    }, wait);
    this.#retryTimer.unref();
  }

  /**
   * Resolves once everything recorded so far was written. While the store is down this waits for it
   * (shutdown gives up after `timeoutMs` and reports what stayed unwritten).
   */
  async flushed(timeoutMs = Infinity): Promise<void> {
    this.#write();
    if (this.#queue.length === 0 && this.#current === null && !this.#writing) return;
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
