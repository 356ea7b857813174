/**
 * A session's message queue: messages waiting while the session is offline or its inflight window (or
 * socket) is full. A ring buffer that grows by doubling up to the configured maximum.
 */
import type { Message, QoS } from '@rmqtt-ts/plugin-api';

export class QueuedDelivery {
  constructor(
    readonly message: Message,
    readonly qos: QoS,
    readonly retain: boolean,
    readonly subscriptionIds: readonly number[] | undefined,
  ) {}
}

const NONE: (QueuedDelivery | undefined)[] = [];

export class DeliveryQueue {
  /** Allocated on the first push (most sessions never queue anything). */
  #buf: (QueuedDelivery | undefined)[] = NONE;
  #head = 0;
  #len = 0;

  get length(): number {
    return this.#len;
  }

  push(d: QueuedDelivery): void {
    if (this.#len === this.#buf.length) this.#grow();
    this.#buf[(this.#head + this.#len) & (this.#buf.length - 1)] = d;
    this.#len++;
  }

  /** Put a delivery back at the front (it could not be sent after all). */
  unshift(d: QueuedDelivery): void {
    if (this.#len === this.#buf.length) this.#grow();
    this.#head = (this.#head - 1) & (this.#buf.length - 1);
    this.#buf[this.#head] = d;
    this.#len++;
  }

  peek(): QueuedDelivery | undefined {
    return this.#len === 0 ? undefined : this.#buf[this.#head];
  }

  shift(): QueuedDelivery | undefined {
    if (this.#len === 0) return undefined;
    const d = this.#buf[this.#head];
    this.#buf[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#buf.length - 1);
    this.#len--;
    if (this.#len === 0 && this.#buf.length > 64) this.#buf = NONE;
    return d;
  }

  clear(): QueuedDelivery[] {
    const out = this.toArray();
    this.#buf = NONE;
    this.#head = 0;
    this.#len = 0;
    return out;
  }

  toArray(): QueuedDelivery[] {
    const out: QueuedDelivery[] = [];
    for (let i = 0; i < this.#len; i++) out.push(this.#buf[(this.#head + i) & (this.#buf.length - 1)]!);
    return out;
  }

  #grow(): void {
    const old = this.#buf;
    const n = old.length;
    const next: (QueuedDelivery | undefined)[] = new Array(n === 0 ? 8 : n * 2);
    for (let i = 0; i < this.#len; i++) next[i] = old[(this.#head + i) & (n - 1)];
    this.#buf = next;
    this.#head = 0;
  }
}
