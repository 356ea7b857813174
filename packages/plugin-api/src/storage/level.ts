/**
 * The embedded backend: a LevelDB directory through `classic-level`. Each batch is one atomic LevelDB
 * write (its log record is complete or dropped on recovery, never half applied); `sync` also flushes it
 * to disk before the promise resolves, so it survives a power cut, not only a killed process.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import type { KvOp, KvStore } from './kv.js';

/** The part of classic-level's ClassicLevel that the backend uses. */
/** A chained batch: classic-level's cheapest way to write many operations (far less per-operation work than an array). */
export interface LevelChainedBatch {
  put(key: string, value: Buffer): LevelChainedBatch;
  del(key: string): LevelChainedBatch;
  write(options?: { sync?: boolean }): Promise<void>;
}

export interface LevelDatabase {
  open(): Promise<void>;
  batch(): LevelChainedBatch;
  iterator(): AsyncIterable<[string, Buffer]> & { close(): Promise<void> };
  close(): Promise<void>;
}

export type LevelConstructor = new (
  location: string,
  options: { keyEncoding: 'utf8'; valueEncoding: 'buffer'; createIfMissing: boolean; cacheSize?: number },
) => LevelDatabase;

export interface LevelOptions {
  /** Flush every batch to disk (fsync) before it counts as written. */
  readonly sync: boolean;
  /** LevelDB block cache in bytes. */
  readonly cacheSize?: number;
}

function reason(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  while (e instanceof Error && parts.length < 4) {
    if (!parts.includes(e.message)) parts.push(e.message);
    e = e.cause;
  }
  return parts.join(': ') || String(err);
}

/**
 * Open (or create) the store in `path`. Refuses — naming the path — a path that is not a directory, a
 * non-empty directory that is not a LevelDB store (nothing in it is touched), a store another process
 * holds, or a corrupt one.
 */
export async function openLevelKv(Level: LevelConstructor, path: string, options: LevelOptions): Promise<KvStore> {
  if (existsSync(path)) {
    if (!statSync(path).isDirectory()) throw new Error(`${path}: not a directory (expected the store's directory)`);
    const files = readdirSync(path);
    if (files.length > 0 && !files.includes('CURRENT')) {
      throw new Error(`${path}: not a LevelDB store (no CURRENT file among ${files.length} files); refusing to create one over it`);
    }
  }
  const db = new Level(path, { keyEncoding: 'utf8', valueEncoding: 'buffer', createIfMissing: true, ...(options.cacheSize !== undefined ? { cacheSize: options.cacheSize } : {}) });
  try {
    await db.open();
  } catch (err) {
    throw new Error(`${path}: cannot open the store: ${reason(err)}`, { cause: err });
  }
  return new LevelKv(db, path, options);
}

class LevelKv implements KvStore {
  readonly description: string;
  readonly #db: LevelDatabase;
  readonly #sync: boolean;

  constructor(db: LevelDatabase, path: string, options: LevelOptions) {
    this.#db = db;
    this.#sync = options.sync;
    this.description = `leveldb ${path}`;
  }

  async write(ops: readonly KvOp[]): Promise<void> {
    if (ops.length === 0) return;
    const b = this.#db.batch();
    for (const op of ops) {
      if (op.type === 'put') b.put(op.key, op.value);
      else b.del(op.key);
    }
    await b.write({ sync: this.#sync });
  }

  async *entries(): AsyncIterable<readonly [string, Buffer]> {
    const it = this.#db.iterator();
    try {
      for await (const [k, v] of it) yield [k, v] as const;
    } finally {
      await it.close();
    }
  }

  async close(): Promise<void> {
    await this.#db.close();
  }
}
