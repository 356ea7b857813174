/**
 * RMQTT's storage settings (`storage.type` with its `storage.sled.*`, `storage.redis.*` and
 * `storage.redis-cluster.*` tables, `backend_timeout`), shared by the storage plugins, and the opener
 * that turns them into a KvStore. `sled` — RMQTT's embedded store — is the name of the embedded
 * LMDB store here; its `path` and the Redis `prefix` may hold `{node}`.
 */
import type { ConfigSchema } from '../plugin.js';
import type { Logger } from '../services.js';
import type { KvStore } from './kv.js';
import { openLmdbKv, type LmdbOpen } from './lmdb.js';
import { redisKv, type RedisClient } from './redis.js';

export type StorageType = 'ram' | 'sled' | 'redis' | 'redis-cluster';

/** The `storage` table; the tables of the types a plugin does not offer are absent. */
export interface StorageConfig {
  type: StorageType;
  sled: { path: string; cache_capacity: number; sync_writes: boolean };
  redis: { url: string; prefix: string };
  'redis-cluster': { urls: string[]; prefix: string };
}

/** The `storage` table of a plugin's schema: `types` it offers, the default type, path and prefix. */
export function storageSchema(o: { types: readonly StorageType[]; type: StorageType; path: string; prefix: string }): ConfigSchema {
  const schema: ConfigSchema = {
    type: { doc: `Where the data lives: ${o.types.join(', ')} (sled: the embedded LMDB store).`, format: [...o.types], default: o.type },
  };
  // only the tables of the types offered: a key that could never take effect is not accepted
  if (o.types.includes('sled')) {
    schema['sled'] = {
      path: { doc: 'Directory of the embedded store ({node}: the node id).', format: String, default: o.path },
      cache_capacity: { doc: "sled's cache size; the embedded LMDB store reads through the operating system's page cache instead.", format: 'size', default: '1G', notImplemented: true },
      sync_writes: {
        doc: 'rmqtt-ts: flush each batch to disk before it counts as written (survives a power cut, not only a killed broker; slower).',
        format: Boolean,
        default: false,
      },
    };
  }
  if (o.types.includes('redis')) {
    schema['redis'] = {
      url: { doc: 'Redis URL, redis://[:password@]host:port[/db].', format: String, default: 'redis://127.0.0.1:6379/', sensitive: true },
      prefix: { doc: 'Key prefix ({node}: the node id).', format: String, default: o.prefix },
    };
  }
  if (o.types.includes('redis-cluster')) {
    schema['redis-cluster'] = {
      urls: { doc: 'Redis Cluster seed nodes.', format: Array, default: ['redis://127.0.0.1:6380/', 'redis://127.0.0.1:6381/', 'redis://127.0.0.1:6382/'], sensitive: true },
      prefix: { doc: 'Key prefix ({node}: the node id).', format: String, default: o.prefix },
    };
  }
  return schema;
}

/** The drivers, handed in by the plugin (which depends on `lmdb` and `ioredis`). */
export interface StorageDrivers {
  readonly lmdb: LmdbOpen;
  /** URL of the `lmdb` module: lets an existing embedded store be checked in a separate process first. */
  readonly lmdbModule?: string;
  readonly Redis: new (url: string, options: Record<string, unknown>) => RedisConnection;
  readonly Cluster: new (nodes: Array<{ host: string; port: number }>, options: Record<string, unknown>) => RedisConnection;
}

/** An ioredis client as the opener drives it. */
export interface RedisConnection extends RedisClient {
  connect(): Promise<unknown>;
  disconnect(): void;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'ready' | 'end', listener: () => void): unknown;
}

export interface OpenStorageOptions {
  readonly node: number;
  /** Store name inside the backend: `session`, `message`, `retain`. */
  readonly namespace: string;
  /** ms a backend call may take (0 = no limit). */
  readonly timeoutMs: number;
  readonly drivers: StorageDrivers;
  readonly logger: Logger;
}

const withNode = (s: string, node: number): string => s.replaceAll('{node}', String(node));

/** A URL with its password hidden, for logs and errors. */
export function maskUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]*:)[^@/]*@/, '$1***@');
}

/**
 * Open the store `config.type` names. An embedded store that cannot be opened, or a Redis that does
 * not answer within `timeoutMs` (15 s when 0), rejects with a message naming the path or URL. Once
 * open, a Redis connection that drops is re-established in the background (logged once per outage);
 * meanwhile writes fail at once, and the caller retries them.
 */
export async function openStorage(config: StorageConfig, o: OpenStorageOptions): Promise<KvStore> {
  switch (config.type) {
    case 'sled':
      return openLmdbKv(o.drivers.lmdb, withNode(config.sled.path, o.node), {
        sync: config.sled.sync_writes,
        ...(o.drivers.lmdbModule !== undefined ? { probeModule: o.drivers.lmdbModule } : {}),
      });
    case 'redis': {
      const url = redisUrl(config.redis.url, 'storage.redis.url');
      const client = new o.drivers.Redis(url, clientOptions(o.timeoutMs));
      return connected(client, maskUrl(url), withNode(config.redis.prefix, o.node), o);
    }
    case 'redis-cluster': {
      const urls = config['redis-cluster'].urls;
      if (urls.length === 0) throw new Error('storage.redis-cluster.urls: expected at least one redis:// URL');
      const parsed = urls.map((u, i) => new URL(redisUrl(u, `storage.redis-cluster.urls[${i}]`)));
      const nodes = parsed.map((p) => ({ host: p.hostname, port: Number(p.port || 6379) }));
      const first = parsed[0]!;
      const password = first.password !== '' ? decodeURIComponent(first.password) : undefined;
      const client = new o.drivers.Cluster(nodes, {
        lazyConnect: true,
        enableOfflineQueue: false,
        enableReadyCheck: true,
        clusterRetryStrategy: (n: number) => Math.min(100 * 2 ** n, 5000),
        redisOptions: { ...clientOptions(o.timeoutMs), ...(password !== undefined ? { password } : {}) },
      });
      return connected(client, urls.map(maskUrl).join(','), withNode(config['redis-cluster'].prefix, o.node), o);
    }
    default:
      throw new Error(`storage.type "${config.type}" has no durable backend`);
  }
}

/** A Redis URL as given, or an error naming the key and what was expected. */
function redisUrl(value: unknown, key: string): string {
  let u: URL | undefined;
  try {
    u = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    u = undefined;
  }
  if (u === undefined || (u.protocol !== 'redis:' && u.protocol !== 'rediss:') || u.hostname === '') {
    throw new Error(`${key}: expected a URL such as "redis://127.0.0.1:6379/" (redis:// or rediss://, with a host), got ${JSON.stringify(typeof value === 'string' ? maskUrl(value) : value)}`);
  }
  return value as string;
}

function clientOptions(timeoutMs: number): Record<string, unknown> {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    ...(timeoutMs > 0 ? { commandTimeout: timeoutMs } : {}),
    connectTimeout: timeoutMs > 0 ? timeoutMs : 15_000,
    retryStrategy: (n: number) => Math.min(100 * 2 ** n, 5000),
  };
}

async function connected(client: RedisConnection, where: string, prefix: string, o: OpenStorageOptions): Promise<KvStore> {
  let down = false;
  client.on('error', (err) => {
    if (down) return;
    down = true;
    o.logger.error({ err: err.message, redis: where }, `${o.namespace} storage: redis unreachable; reconnecting`);
  });
  client.on('ready', () => {
    if (!down) return;
    down = false;
    o.logger.info({ redis: where }, `${o.namespace} storage: redis is back`);
  });
  const limit = o.timeoutMs > 0 ? o.timeoutMs : 15_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${limit} ms`)), limit);
      }),
    ]);
  } catch (err) {
    client.disconnect();
    throw new Error(`${where}: cannot connect to redis: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
  const kv = redisKv(client, prefix, o.namespace, `redis ${where}`);
  return {
    description: kv.description,
    write: (ops) => kv.write(ops),
    entries: () => kv.entries(),
    async close() {
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    },
  };
}
