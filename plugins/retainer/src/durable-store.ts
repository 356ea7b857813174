/**
 * Retained messages in memory with a durable copy (the embedded LMDB store or Redis): every change
 * of the in-memory store is written behind — within the tick, batched, retried while the backend is
 * away — as `t/{topic}` → the message, and read back at start-up. Reads never touch the backend.
 */
import type { Logger, Message, RetainStore, Scheduler } from '@rmqtt-ts/plugin-api';
import { KvWriter, decodeMessage, encodeMessage, kvKey, kvKeyParts, type KvStore } from '@rmqtt-ts/plugin-api/storage';
import { RamRetainStore, type RamStoreLimits } from './ram-store.js';

export class DurableRetainStore implements RetainStore {
  readonly #ram: RamRetainStore;
  readonly #kv: KvStore;
  readonly #writer: KvWriter;
  #loading = false;

  constructor(kv: KvStore, limits: RamStoreLimits, scheduler: Scheduler, logger: Logger) {
    this.#kv = kv;
    this.#writer = new KvWriter(kv, logger, 'retained messages');
    this.#ram = new RamRetainStore(limits, scheduler);
    this.#ram.onChange = (topic, message) => {
      if (this.#loading) return;
      if (message === undefined) this.#writer.del(kvKey('t', topic));
      else this.#writer.put(kvKey('t', topic), encodeMessage(message));
    };
  }

  get description(): string {
    return this.#kv.description;
  }

  get writeErrors(): number {
    return this.#writer.errors;
  }

  set limits(l: RamStoreLimits) {
    this.#ram.limits = l;
  }

  /** Read back what the backend kept; expired messages are removed from it. */
  async load(now: number): Promise<number> {
    const expired: string[] = [];
    this.#loading = true;
    try {
      for await (const [key, value] of this.#kv.entries()) {
        const [kind, topic] = kvKeyParts(key);
        let m: Message;
        try {
          if (kind !== 't' || topic === undefined) throw new Error('unknown kind of key');
          m = decodeMessage(value);
        } catch (err) {
          throw new Error(`${this.#kv.description}: unreadable entry "${key}": ${(err as Error).message}`, { cause: err });
        }
        if (m.expiresAt !== 0 && m.expiresAt <= now) expired.push(key);
        else this.#ram.set(m);
      }
    } finally {
      this.#loading = false;
    }
    for (const key of expired) this.#writer.del(key);
    return this.#ram.count();
  }

  set(message: Message): boolean {
    return this.#ram.set(message);
  }

  delete(topic: string): boolean {
    return this.#ram.delete(topic);
  }

  get(topic: string): Message | undefined {
    return this.#ram.get(topic);
  }

  match(filter: string): Message[] {
    return this.#ram.match(filter);
  }

  count(): number {
    return this.#ram.count();
  }

  /** Resolves once every change so far reached the backend. */
  written(): Promise<void> {
    return this.#writer.written();
  }

  async close(): Promise<void> {
    this.#ram.onChange = undefined;
    this.#ram.close();
    this.#writer.close();
    await this.#kv.close();
  }
}
