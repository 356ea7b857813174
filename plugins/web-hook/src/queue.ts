/**
 * The delivery queue of web-hook events: bounded (`queue_capacity` events waiting in all), at most
 * `concurrency_limit` deliveries at once, and one event per client at a time — a client's events go out
 * in order, and a retry holds back that client's later events, nobody else's. Clients take turns.
 */

export interface QueueOptions {
  capacity: number;
  concurrency: number;
  /** Deliver one event; resolves when done (delivered, or given up after its retries). Never rejects. */
  send: (item: QueuedEvent) => Promise<void>;
  /** An event that did not fit. */
  onOverflow: (item: QueuedEvent) => void;
}

export interface QueuedEvent {
  /** Whose order it keeps: the client id ("" for events without a client). */
  readonly key: string;
  readonly action: string;
  readonly body: string;
  readonly urls: readonly string[];
}

/** A FIFO that does not shift arrays: events are appended and read from a moving head. */
class Fifo {
  #items: QueuedEvent[] = [];
  #head = 0;
  get length(): number {
    return this.#items.length - this.#head;
  }
  push(e: QueuedEvent): void {
    this.#items.push(e);
  }
  peek(): QueuedEvent | undefined {
    return this.#items[this.#head];
  }
  shift(): QueuedEvent | undefined {
    const e = this.#items[this.#head];
    if (e === undefined) return undefined;
    this.#items[this.#head++] = undefined as unknown as QueuedEvent;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return e;
  }
}

export class EventQueue {
  readonly #o: QueueOptions;
  #capacity: number;
  #concurrency: number;
  /** Waiting events per client. */
  readonly #byKey = new Map<string, Fifo>();
  /** Clients with a waiting event and none in flight, in turn order. */
  readonly #ready: string[] = [];
  #readyHead = 0;
  /** Clients with an event in flight. */
  readonly #busy = new Set<string>();
  #waiting = 0;
  #inFlight = 0;
  readonly #idle: (() => void)[] = [];

  constructor(options: QueueOptions) {
    this.#o = options;
    this.#capacity = options.capacity;
    this.#concurrency = options.concurrency;
  }

  /** New limits, at once: more room lets waiting events go; less only refuses new ones. */
  resize(capacity: number, concurrency: number): void {
    this.#capacity = capacity;
    this.#concurrency = concurrency;
    this.#pump();
  }

  /** Events waiting (not yet handed to send). */
  get waiting(): number {
    return this.#waiting;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Queue an event; false when the queue is full (the event is dropped and reported). */
  push(e: QueuedEvent): boolean {
    if (this.#waiting >= this.#capacity) {
      this.#o.onOverflow(e);
      return false;
    }
    let q = this.#byKey.get(e.key);
    if (q === undefined) {
      q = new Fifo();
      this.#byKey.set(e.key, q);
    }
    q.push(e);
    this.#waiting++;
    if (q.length === 1 && !this.#busy.has(e.key)) this.#ready.push(e.key);
    this.#pump();
    return true;
  }

  #pump(): void {
    while (this.#inFlight < this.#concurrency && this.#readyHead < this.#ready.length) {
      const key = this.#ready[this.#readyHead++]!;
      if (this.#readyHead > 1024 && this.#readyHead * 2 > this.#ready.length) {
        this.#ready.splice(0, this.#readyHead);
        this.#readyHead = 0;
      }
      const q = this.#byKey.get(key);
      const e = q?.shift();
      if (e === undefined) continue;
      this.#waiting--;
      this.#inFlight++;
      this.#busy.add(key);
      void this.#o.send(e).then(() => this.#done(key));
    }
  }

  #done(key: string): void {
    this.#inFlight--;
    this.#busy.delete(key);
    const q = this.#byKey.get(key);
    if (q !== undefined) {
      if (q.length > 0) this.#ready.push(key);
      else this.#byKey.delete(key);
    }
    this.#pump();
    if (this.#inFlight === 0 && this.#waiting === 0) for (const f of this.#idle.splice(0)) f();
  }

  /** Resolves once nothing waits and nothing is in flight. */
  drained(): Promise<void> {
    if (this.#inFlight === 0 && this.#waiting === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Drop every waiting event (each reported as overflow); deliveries in flight go on. */
  clear(): number {
    let dropped = 0;
    for (const [key, q] of this.#byKey) {
      for (let e = q.shift(); e !== undefined; e = q.shift()) {
        dropped++;
        this.#o.onOverflow(e);
      }
      if (!this.#busy.has(key)) this.#byKey.delete(key);
    }
    this.#ready.length = 0;
    this.#readyHead = 0;
    this.#waiting = 0;
    if (this.#inFlight === 0) for (const f of this.#idle.splice(0)) f();
    return dropped;
  }
}
