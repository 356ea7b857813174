/**
 * An in-memory MessageStore: published messages kept until they expire (oldest evicted beyond
 * `maxCount`), with a per-session record of what was delivered so nothing is replayed twice. The kernel
 * provides none by default; a message-storage plugin may provide this one.
 */
import { topicMatches, type Message, type MessageStore } from '@rmqtt-ts/plugin-api';

function key(m: Message): string {
  return `${m.from.node}:${m.id}`;
}

export class MemoryMessageStore implements MessageStore {
  readonly #messages = new Map<string, Message>();
  readonly #delivered = new Map<string, Set<number>>();
  readonly #maxCount: number;

  constructor(options: { maxCount?: number } = {}) {
    this.#maxCount = options.maxCount ?? 1_000_000;
  }

  store(message: Message): void {
    this.#messages.set(key(message), message);
    if (this.#messages.size > this.#maxCount) {
      const oldest = this.#messages.keys().next().value;
      if (oldest !== undefined) this.#messages.delete(oldest);
    }
  }

  match(filter: string, now: number): Message[] {
    const out: Message[] = [];
    for (const [k, m] of this.#messages) {
      if (m.expiresAt !== 0 && m.expiresAt <= now) {
        this.#messages.delete(k);
        continue;
      }
      if (topicMatches(filter, m.topic)) out.push(m);
    }
    return out;
  }

  markDelivered(clientId: string, messageIds: readonly number[]): void {
    let set = this.#delivered.get(clientId);
    if (set === undefined) {
      set = new Set();
      this.#delivered.set(clientId, set);
    }
    for (const id of messageIds) set.add(id);
  }

  delivered(clientId: string, messageId: number): boolean {
    return this.#delivered.get(clientId)?.has(messageId) ?? false;
  }

  forget(clientId: string): void {
    this.#delivered.delete(clientId);
  }

  count(): number {
    return this.#messages.size;
  }
}
