/**
 * The Redis backend (`ioredis`, one server or a Redis Cluster). A store's entries are spread over
 * SHARDS hashes `{prefix}:{namespace}:{n}` by a hash of the key; the `{n}` is the cluster hash tag, so
 * each shard lives in one slot and a batch is one MULTI per shard touched (atomic per shard; on a single
 * server all shards go in one MULTI, atomic as a whole). The stores on top tolerate a batch that landed
 * on some shards only (a crash between them): a reference without its message is dropped at load, a
 * message nothing refers to is removed.
 *
 * Durability is the server's: run Redis with `appendonly yes` (and `appendfsync everysec` or `always`)
 * for acknowledged data to survive a Redis restart.
 */
import type { KvOp, KvStore } from './kv.js';

export const REDIS_SHARDS = 16;

/** The part of an ioredis MULTI that the backend uses. */
export interface RedisMulti {
  hset(key: string, field: string, value: Buffer): RedisMulti;
  hdel(key: string, ...fields: string[]): RedisMulti;
  exec(): Promise<Array<[Error | null, unknown]> | null>;
}

/** The part of an ioredis Redis or Cluster client that the backend uses. */
export interface RedisClient {
  multi(): RedisMulti;
  hscanBuffer(key: string, cursor: string | number, countToken: 'COUNT', count: number): Promise<[Buffer, Buffer[]]>;
  quit(): Promise<unknown>;
  readonly isCluster?: boolean;
}

function shardOf(key: string): number {
  // FNV-1a
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % REDIS_SHARDS;
}

/**
 * A store named `namespace` under `prefix` on a connected client. `description` names the server(s)
 * for logs. The client should be made with `enableOfflineQueue: false`, so that writes fail while the
 * server is away instead of waiting unseen, and with a `commandTimeout`.
 */
export function redisKv(client: RedisClient, prefix: string, namespace: string, description: string): KvStore {
  return new RedisKv(client, prefix, namespace, description);
}

class RedisKv implements KvStore {
  readonly description: string;
  readonly #client: RedisClient;
  readonly #hashes: string[];

  constructor(client: RedisClient, prefix: string, namespace: string, description: string) {
    this.#client = client;
    this.#hashes = Array.from({ length: REDIS_SHARDS }, (_, n) => `${prefix}:${namespace}:{${n}}`);
    this.description = `${description} ${prefix}:${namespace}`;
  }

  async write(ops: readonly KvOp[]): Promise<void> {
    if (ops.length === 0) return;
    if (this.#client.isCluster !== true) {
      const m = this.#client.multi();
      for (const op of ops) this.#add(m, op);
      check(await m.exec());
      return;
    }
    const byShard = new Map<number, RedisMulti>();
    for (const op of ops) {
      const n = shardOf(op.key);
      let m = byShard.get(n);
      if (m === undefined) byShard.set(n, (m = this.#client.multi()));
      this.#add(m, op);
    }
    const results = await Promise.all([...byShard.values()].map((m) => m.exec()));
    for (const r of results) check(r);
  }

  #add(m: RedisMulti, op: KvOp): void {
    const hash = this.#hashes[shardOf(op.key)]!;
    if (op.type === 'put') m.hset(hash, op.key, op.value);
    else m.hdel(hash, op.key);
  }

  async *entries(): AsyncIterable<readonly [string, Buffer]> {
    for (const hash of this.#hashes) {
      let cursor = '0';
      do {
        const [next, items] = await this.#client.hscanBuffer(hash, cursor, 'COUNT', 1000);
        for (let i = 0; i + 1 < items.length; i += 2) yield [items[i]!.toString('utf8'), items[i + 1]!] as const;
        cursor = next.toString();
      } while (cursor !== '0');
    }
  }

  async close(): Promise<void> {
    // the client belongs to the caller (it may serve several stores)
  }
}

function check(result: Array<[Error | null, unknown]> | null): void {
  if (result === null) throw new Error('redis transaction aborted');
  for (const [err] of result) if (err !== null) throw err;
}
