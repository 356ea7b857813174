/** A token bucket: `burst` tokens refilled every `periodMs` (RMQTT's "burst,period" rates). */
export class TokenBucket {
  #tokens: number;
  #last: number;
  readonly burst: number;
  readonly periodMs: number;

  constructor(burst: number, periodMs: number, now: number = Date.now()) {
    this.burst = burst;
    this.periodMs = periodMs;
    this.#tokens = burst;
    this.#last = now;
  }

  #refill(now: number): void {
    if (now <= this.#last) return;
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) * this.burst) / this.periodMs);
    this.#last = now;
  }

  /** Take n tokens if there are enough. */
  tryTake(n: number, now: number = Date.now()): boolean {
    this.#refill(now);
    if (this.#tokens >= n) {
      this.#tokens -= n;
      return true;
    }
    return false;
  }

  /** Take n tokens even if that goes negative (a packet already read); returns ms until the balance is positive again. */
  take(n: number, now: number = Date.now()): number {
    this.#refill(now);
    this.#tokens -= n;
    if (this.#tokens >= 0) return 0;
    return Math.ceil((-this.#tokens * this.periodMs) / this.burst);
  }

  /** ms until n tokens are available. */
  waitFor(n: number, now: number = Date.now()): number {
    this.#refill(now);
    if (this.#tokens >= n) return 0;
    return Math.ceil(((n - this.#tokens) * this.periodMs) / this.burst);
  }
}
