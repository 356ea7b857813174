/**
 * The embedded backend: an LMDB environment in a directory, through `lmdb` (lmdb-js). A batch is one
 * write transaction committed synchronously on the calling thread — no hop to a worker thread — so it
 * is in the operating system's page cache (and survives a killed broker) by the time `write` returns;
 * with `sync` the commit is also flushed to disk (survives a power cut). LMDB is copy-on-write with a
 * double meta page: a transaction is wholly there after a crash or wholly not.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KvOp, KvStore } from './kv.js';

/** The part of an lmdb-js database that the backend uses. */
export interface LmdbDatabase {
  transactionSync<T>(action: () => T): T;
  putSync(key: string, value: Buffer): boolean;
  removeSync(key: string): boolean;
  getRange(options?: Record<string, unknown>): Iterable<{ key: unknown; value: Buffer }>;
  close(): Promise<void>;
}

/** lmdb-js's `open`. */
export type LmdbOpen = (options: { path: string; noSync: boolean; encoding: 'binary'; compression: false; keyEncoding: 'ordered-binary' }) => LmdbDatabase;

export interface LmdbOptions {
  /** Flush every commit to disk (fsync) before it counts as written. */
  readonly sync: boolean;
  /**
   * URL of the `lmdb` module: an existing store is first read through
   * in a separate process with it, so that a damaged file — LMDB has no checksums, and a broken page
   * can crash its reader — stops start-up with a message instead of taking the broker down.
   */
  readonly probeModule?: string;
}

const META_MAGIC = 0xbeefc0de;
/** Where the magic number of LMDB's two meta pages lies (64-bit build, 4 KiB pages). */
const META_OFFSETS = [24, 4096 + 24];

/** Refuse a data file whose meta pages are both gone, and one whose pages a reader cannot walk. */
function checkStore(path: string, probeModule: string | undefined): void {
  const file = join(path, 'data.mdb');
  if (!existsSync(file)) return;
  const head = Buffer.alloc(4096 + 64);
  const fd = openSync(file, 'r');
  let n: number;
  try {
    n = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  if (!META_OFFSETS.some((o) => o + 4 <= n && head.readUInt32LE(o) === META_MAGIC)) {
    throw new Error(`${file}: not an LMDB data file, or both of its meta pages are damaged`);
  }
  if (probeModule === undefined) return;
  const script = [
    `const { open } = await import(${JSON.stringify(probeModule)});`,
    `const db = open({ path: ${JSON.stringify(path)}, readOnly: true, encoding: 'binary', compression: false });`,
    'for (const _ of db.getRange()) {}',
    'await db.close();',
  ].join('\n');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) {
    const why = r.signal !== null ? `crashed (${r.signal})` : `failed: ${(r.stderr ?? '').trim().split('\n').find((l) => l.includes('Error')) ?? `exit ${r.status}`}`;
    throw new Error(`${file}: the store is damaged: reading it through in a separate process ${why}`);
  }
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

const LOCK = 'rmqtt.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Keep other brokers off the store: LMDB lets several processes share an environment, but two brokers
 * writing one session store would undo each other. A lock file names the holder; one left by a
 * process that is gone (killed) is taken over.
 */
/** Stores this process holds (two brokers in one process, as tests run them, share a pid). */
const held = new Set<string>();

function lock(path: string): () => void {
  const file = join(path, LOCK);
  if (held.has(file)) throw new Error(`${path}: the store is in use by process ${process.pid} (this one)`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      held.add(file);
      return () => {
        held.delete(file);
        try {
          unlinkSync(file);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`${path}: cannot lock the store: ${reason(err)}`, { cause: err });
      const holder = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
        throw new Error(`${path}: the store is in use by process ${holder}`);
      }
      unlinkSync(file);
    }
  }
  throw new Error(`${path}: cannot lock the store`);
}

/**
 * Open (or create) the store in `path`. Refuses — naming the path — a path that is not a directory, a
 * non-empty directory that is not an LMDB store (nothing in it is touched), a store another running
 * broker holds, or a damaged one (checked read-only before it is opened for writing).
 */
export function openLmdbKv(open: LmdbOpen, path: string, options: LmdbOptions): KvStore {
  if (existsSync(path)) {
    if (!statSync(path).isDirectory()) throw new Error(`${path}: not a directory (expected the store's directory)`);
    const files = readdirSync(path).filter((f) => f !== LOCK);
    if (files.length > 0 && !files.includes('data.mdb')) {
      throw new Error(`${path}: not an LMDB store (no data.mdb among ${files.length} files); refusing to create one over it`);
    }
  }
  const unlock = existsSync(path) ? lock(path) : undefined;
  try {
    checkStore(path, options.probeModule);
  } catch (err) {
    unlock?.();
    throw err;
  }
  let db: LmdbDatabase;
  try {
    db = open({ path, noSync: !options.sync, encoding: 'binary', compression: false, keyEncoding: 'ordered-binary' });
    // read once now: a damaged file fails here, at start-up, not at the first write
    for (const _ of db.getRange({ limit: 1 })) break;
  } catch (err) {
    unlock?.();
    throw new Error(`${path}: cannot open the store: ${reason(err)}`, { cause: err });
  }
  return new LmdbKv(db, path, unlock ?? lock(path));
}

class LmdbKv implements KvStore {
  readonly description: string;
  readonly #db: LmdbDatabase;
  readonly #unlock: () => void;

  constructor(db: LmdbDatabase, path: string, unlock: () => void) {
    this.#db = db;
    this.#unlock = unlock;
    this.description = `lmdb ${path}`;
  }

  write(ops: readonly KvOp[]): Promise<void> {
    if (ops.length === 0) return Promise.resolve();
    try {
      this.#db.transactionSync(() => {
        for (const op of ops) {
          if (op.type === 'put') this.#db.putSync(op.key, op.value);
          else this.#db.removeSync(op.key);
        }
      });
    } catch (err) {
      return Promise.reject(err);
    }
    return Promise.resolve();
  }

  async *entries(): AsyncIterable<readonly [string, Buffer]> {
    for (const { key, value } of this.#db.getRange()) yield [String(key), value] as const;
  }

  async close(): Promise<void> {
    await this.#db.close();
    this.#unlock();
  }
}
