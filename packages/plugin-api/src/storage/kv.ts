/**
 * The key-value layer under the durable stores: a store of string keys and binary values that applies
 * batches of writes and lists its entries. Two backends implement it — LMDB (`lmdb`, the embedded
 * default) and Redis (`ioredis`, one server or a Redis Cluster) — and the session, message and
 * retained-message stores are written once on top of it.
 *
 * The drivers are handed in by the plugin that uses them (it depends on `lmdb` / `ioredis`
 * itself), so the plugin API has no native or network dependency of its own.
 */

export type KvOp = { readonly type: 'put'; readonly key: string; readonly value: Buffer } | { readonly type: 'del'; readonly key: string };

export interface KvStore {
  /** What and where, for logs and errors: `lmdb /var/lib/rmqtt/session`, `redis 127.0.0.1:6379 rmqtt:session`. */
  readonly description: string;
  /**
   * Apply a batch; resolves once it is stored (LMDB: one transaction, committed before `write`
   * returns; with `sync` also flushed to disk. Redis: one MULTI per shard). Rejects when the backend is
   * unreachable — nothing is queued behind the caller's back.
   */
  write(ops: readonly KvOp[]): Promise<void>;
  /** Every entry (LMDB: in key order; Redis: in no particular order). */
  entries(): AsyncIterable<readonly [key: string, value: Buffer]>;
  close(): Promise<void>;
}

const EMPTY_VALUE = Buffer.alloc(0);

/** Collects a batch's operations, the last one per key winning (a put followed by a del is a del). */
export class KvBatch {
  readonly #ops = new Map<string, KvOp>();

  put(key: string, value: Buffer): void {
    this.#ops.set(key, { type: 'put', key, value });
  }

  del(key: string): void {
    this.#ops.set(key, { type: 'del', key });
  }

  /** A put whose value is filled in later, before the batch is written (a later del of the key still wins). */
  putLater(key: string): { value: Buffer } {
    const op = { type: 'put' as const, key, value: EMPTY_VALUE };
    this.#ops.set(key, op);
    return op;
  }

  get size(): number {
    return this.#ops.size;
  }

  /** Lay `newer` over this batch: its operations win where both touch a key. */
  merge(newer: KvBatch): void {
    for (const op of newer.ops()) this.#ops.set(op.key, op);
  }

  ops(): KvOp[] {
    return [...this.#ops.values()];
  }
}

/** A key from parts: each part percent-encoded, so `/` inside a client id or topic cannot shift the layout. */
export function kvKey(...parts: ReadonlyArray<string | number>): string {
  return parts.map((p) => encodeURIComponent(String(p))).join('/');
}

/** The parts of a key made by kvKey. */
export function kvKeyParts(key: string): string[] {
  return key.split('/').map((p) => decodeURIComponent(p));
}
