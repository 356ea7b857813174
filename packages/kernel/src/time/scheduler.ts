/**
 * One deadline structure for the broker: session expiry, will delay, message and retained expiry,
 * delayed publishes. A binary min-heap and a single timer armed for the earliest deadline, never for
 * more than 2^31−1 ms (Node clamps longer delays to 1 ms, which would spin).
 */
import type { DeadlineHandle, Logger, Scheduler } from '@rmqtt-ts/plugin-api';

const MAX_TIMER_MS = 2 ** 31 - 1;

class Deadline implements DeadlineHandle {
  cancelled = false;
  constructor(
    readonly at: number,
    readonly fn: () => void,
    readonly seq: number,
  ) {}
}

export class DeadlineScheduler implements Scheduler {
  readonly #heap: Deadline[] = [];
  #timer: NodeJS.Timeout | undefined;
  #armedFor = Infinity;
  #cancelled = 0;
  #seq = 0;
  #closed = false;
  readonly #now: () => number;
  readonly #logger: Logger;

  constructor(logger: Logger, now: () => number = Date.now) {
    this.#logger = logger;
    this.#now = now;
  }

  get size(): number {
    return this.#heap.length - this.#cancelled;
  }

  at(at: number, fn: () => void): DeadlineHandle {
    const d = new Deadline(at, fn, this.#seq++);
    this.#push(d);
    if (at < this.#armedFor) this.#arm();
    return d;
  }

  cancel(handle: DeadlineHandle): void {
    const d = handle as Deadline;
    if (d.cancelled) return;
    d.cancelled = true;
    this.#cancelled++;
    // keep the heap from filling with dead entries (e.g. many sessions reconnecting)
    if (this.#cancelled > 1024 && this.#cancelled > this.#heap.length / 2) this.#compact();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#heap.length = 0;
  }

  #arm(): void {
    if (this.#closed) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
    while (this.#heap.length > 0 && this.#heap[0]!.cancelled) {
      this.#pop();
      this.#cancelled--;
    }
    const top = this.#heap[0];
    if (!top) return;
    const delay = Math.min(Math.max(top.at - this.#now(), 0), MAX_TIMER_MS);
    this.#armedFor = top.at;
    this.#timer = setTimeout(this.#fire, delay);
    this.#timer.unref();
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = this.#now();
    while (this.#heap.length > 0 && this.#heap[0]!.at <= now) {
      const d = this.#pop()!;
      if (d.cancelled) {
        this.#cancelled--;
        continue;
      }
      d.cancelled = true; // fired: a late cancel() is a no-op
      try {
        d.fn();
      } catch (err) {
        this.#logger.error({ err }, 'scheduled task failed');
      }
    }
    this.#arm();
  };

  #less(a: Deadline, b: Deadline): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #push(d: Deadline): void {
    const h = this.#heap;
    h.push(d);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  #pop(): Deadline | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }

  #compact(): void {
    const live = this.#heap.filter((d) => !d.cancelled);
    this.#heap.length = 0;
    this.#cancelled = 0;
    for (const d of live) this.#push(d);
    this.#arm();
  }
}
