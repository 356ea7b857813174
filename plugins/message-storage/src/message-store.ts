/**
 * Published messages kept until they expire, with who has had each (client ids and shared groups), for
 * replay to later subscriptions. Messages live in memory, oldest first, bounded by count and payload
 * bytes (the oldest make room); with a KvStore they are also written through to it and read back at
 * start-up:
 *
 *   m/{node}:{id}   the message
 *   r/{node}:{id}   its recipients (JSON list), rewritten when one is added or forgotten
 */
import { topicMatches, type Logger, type Message, type MessageStore, type StoredMessage } from '@rmqtt-ts/plugin-api';
import { KvWriter, decodeJson, decodeMessage, encodeJson, encodeMessage, kvKey, kvKeyParts, type KvStore } from '@rmqtt-ts/plugin-api/storage';

export interface MessageLimits {
  /** Most messages kept. */
  readonly maxCount: number;
  /** Most payload bytes kept. */
  readonly maxBytes: number;
}

interface Entry extends StoredMessage {
  readonly key: string;
  readonly recipients: Set<string>;
}

const keyOf = (m: Message): string => `${m.from.node}:${m.id}`;

export class StoredMessages implements MessageStore {
  /** By key, oldest first. */
  readonly #entries = new Map<string, Entry>();
  /** Client id → keys of the messages it is recorded against (for forget). */
  readonly #byClient = new Map<string, Set<string>>();
  #bytes = 0;
  limits: MessageLimits;
  readonly #writer: KvWriter | undefined;
  readonly #kv: KvStore | undefined;

  constructor(limits: MessageLimits, kv?: KvStore, logger?: Logger) {
    this.limits = limits;
    this.#kv = kv;
    this.#writer = kv !== undefined && logger !== undefined ? new KvWriter(kv, logger, 'message storage') : undefined;
  }

  get description(): string {
    return this.#kv?.description ?? 'ram';
  }

  /** Failed backend writes so far. */
  get writeErrors(): number {
    return this.#writer?.errors ?? 0;
  }

  /** Read the messages a durable store kept, dropping the expired ones. */
  async load(now: number): Promise<number> {
    const kv = this.#kv;
    if (kv === undefined) return 0;
    const messages = new Map<string, Message>();
    const recipients = new Map<string, string[]>();
    for await (const [key, value] of kv.entries()) {
      const [kind, id] = kvKeyParts(key);
      try {
        if (kind === 'm') messages.set(id!, decodeMessage(value));
        else if (kind === 'r') recipients.set(id!, decodeJson<string[]>(value));
        else throw new Error('unknown kind of key');
      } catch (err) {
        throw new Error(`${kv.description}: unreadable entry "${key}": ${(err as Error).message}`, { cause: err });
      }
    }
    const sorted = [...messages.entries()].sort((a, b) => a[1].createdAt - b[1].createdAt || a[1].id - b[1].id);
    for (const [key, m] of sorted) {
      if (m.expiresAt !== 0 && m.expiresAt <= now) {
        this.#writer!.del(kvKey('m', key));
        this.#writer!.del(kvKey('r', key));
        continue;
      }
      this.#add(key, m, recipients.get(key) ?? []);
    }
    for (const key of recipients.keys()) if (!messages.has(key)) this.#writer!.del(kvKey('r', key));
    this.#evict();
    return this.#entries.size;
  }

  store(message: Message, recipients: readonly string[]): void | Promise<void> {
    const key = keyOf(message);
    if (this.#entries.has(key)) return;
    this.#add(key, message, recipients);
    if (this.#writer !== undefined) {
      this.#writer.put(kvKey('m', key), encodeMessage(message));
      if (recipients.length > 0) this.#writer.put(kvKey('r', key), encodeJson(recipients));
    }
    this.#evict();
  }

  match(filter: string, now: number): StoredMessage[] {
    const out: StoredMessage[] = [];
    for (const e of this.#entries.values()) {
      if (e.message.expiresAt !== 0 && e.message.expiresAt <= now) continue;
      if (topicMatches(filter, e.message.topic)) out.push(e);
    }
    return out;
  }

  markDelivered(recipient: string, messages: readonly Message[]): void {
    for (const m of messages) {
      const e = this.#entries.get(keyOf(m));
      if (e === undefined || e.recipients.has(recipient)) continue;
      e.recipients.add(recipient);
      this.#index(recipient, e.key);
      this.#writer?.put(kvKey('r', e.key), encodeJson([...e.recipients]));
    }
  }

  forget(clientId: string): void {
    const keys = this.#byClient.get(clientId);
    if (keys === undefined) return;
    this.#byClient.delete(clientId);
    for (const key of keys) {
      const e = this.#entries.get(key);
      if (e === undefined || !e.recipients.delete(clientId)) continue;
      this.#writer?.put(kvKey('r', key), encodeJson([...e.recipients]));
    }
  }

  count(): number {
    return this.#entries.size;
  }

  /** Remove up to `max` expired messages, oldest first; returns how many went. */
  cleanup(now: number, max: number): number {
    let n = 0;
    for (const e of this.#entries.values()) {
      if (n >= max) break;
      if (e.message.expiresAt !== 0 && e.message.expiresAt <= now) {
        this.#remove(e);
        n++;
      }
    }
    return n;
  }

  /** Resolves once every write so far reached the backend. */
  written(): Promise<void> {
    return this.#writer?.written() ?? Promise.resolve();
  }

  async close(): Promise<void> {
    this.#writer?.close();
    await this.#kv?.close();
  }

  #add(key: string, message: Message, recipients: readonly string[]): void {
    const e: Entry = { key, message, recipients: new Set(recipients) };
    this.#entries.set(key, e);
    this.#bytes += message.payload.length;
    for (const r of e.recipients) this.#index(r, key);
  }

  #index(recipient: string, key: string): void {
    // shared groups are never forgotten: only sessions end
    if (recipient.startsWith('$share/')) return;
    let keys = this.#byClient.get(recipient);
    if (keys === undefined) this.#byClient.set(recipient, (keys = new Set()));
    keys.add(key);
  }

  #remove(e: Entry): void {
    this.#entries.delete(e.key);
    this.#bytes -= e.message.payload.length;
    for (const r of e.recipients) {
      const keys = this.#byClient.get(r);
      if (keys === undefined) continue;
      keys.delete(e.key);
      if (keys.size === 0) this.#byClient.delete(r);
    }
    if (this.#writer !== undefined) {
      this.#writer.del(kvKey('m', e.key));
      this.#writer.del(kvKey('r', e.key));
    }
  }

  #evict(): void {
    const { maxCount, maxBytes } = this.limits;
    while (this.#entries.size > 0 && ((maxCount > 0 && this.#entries.size > maxCount) || (maxBytes > 0 && this.#bytes > maxBytes))) {
      this.#remove(this.#entries.values().next().value!);
    }
  }
}
