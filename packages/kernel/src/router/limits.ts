/**
 * Who holds a `$limit/{n}/{filter}` or `$exclusive/{filter}` (= `$limit/1/`) subscription. Slots are
 * per exact filter text; plain subscriptions to the same filter are not counted.
 */
export class SubscriptionLimits {
  /** filter → holder client id → the limit it subscribed with. */
  readonly #holders = new Map<string, Map<string, number>>();

  /**
   * Take a slot on `filter` for `clientId`; false when the filter is full. A holder subscribing again
   * keeps its slot (its limit is updated). A newcomer needs room under its own limit and under every
   * holder's: a client holding `$exclusive/t` stays alone even if another asks for `$limit/5/t`.
   */
  tryAcquire(filter: string, clientId: string, limit: number): boolean {
    let holders = this.#holders.get(filter);
    if (holders?.has(clientId) === true) {
      holders.set(clientId, limit);
      return true;
    }
    const held = holders === undefined ? 0 : holders.size;
    if (held >= limit) return false;
    if (holders !== undefined) {
      for (const holderLimit of holders.values()) if (held >= holderLimit) return false;
    } else {
      holders = new Map();
      this.#holders.set(filter, holders);
    }
    holders.set(clientId, limit);
    return true;
  }

  /** Give the slot back (unsubscribe, session end). Releasing a slot not held is a no-op. */
  release(filter: string, clientId: string): void {
    const holders = this.#holders.get(filter);
    if (holders === undefined) return;
    holders.delete(clientId);
    if (holders.size === 0) this.#holders.delete(filter);
  }

  /** Number of clients holding a slot on `filter`. */
  holders(filter: string): number {
    return this.#holders.get(filter)?.size ?? 0;
  }

  clear(): void {
    this.#holders.clear();
  }
}
