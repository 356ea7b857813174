/** openStorage refuses bad Redis URLs before any connection is tried, naming the key. */
import { describe, expect, it } from 'vitest';
import type { Logger } from '../services.js';
import { maskUrl, openStorage, type StorageConfig, type StorageDrivers } from './open.js';

const never = (): never => {
  throw new Error('no connection may be tried for a bad URL');
};
const drivers = { lmdb: never, Redis: never, Cluster: never } as unknown as StorageDrivers;
const logger = { info: never, warn: never, error: never, debug: never } as unknown as Logger;

function config(type: 'redis' | 'redis-cluster', url: string, urls: string[] = []): StorageConfig {
  return { type, sled: { path: '', cache_capacity: 0, sync_writes: false }, redis: { url, prefix: 'p' }, 'redis-cluster': { urls, prefix: 'p' } };
}

const open = (c: StorageConfig) => openStorage(c, { node: 1, namespace: 'test', timeoutMs: 100, drivers, logger });

describe('openStorage: Redis URLs', () => {
  it('a URL that is not redis:// or rediss:// with a host is refused, naming the key; a password is not shown', async () => {
    await expect(open(config('redis', 'http://127.0.0.1:6379/'))).rejects.toThrow(/^storage\.redis\.url: expected a URL such as "redis:\/\/127\.0\.0\.1:6379\/"/);
    await expect(open(config('redis', 'not a url'))).rejects.toThrow(/storage\.redis\.url: expected/);
    await expect(open(config('redis', 'redis://:secret@/'))).rejects.toThrow(/storage\.redis\.url/);
    await expect(open(config('redis', 'redis://:secret@/'))).rejects.not.toThrow(/secret/);
    await expect(open(config('redis-cluster', '', ['redis://127.0.0.1:7000/', 'tcp://127.0.0.1:7001/']))).rejects.toThrow(/storage\.redis-cluster\.urls\[1\]: expected/);
    await expect(open(config('redis-cluster', '', []))).rejects.toThrow(/storage\.redis-cluster\.urls: expected at least one/);
  });

  it('maskUrl hides the password only', () => {
    expect(maskUrl('redis://user:pw@host:6379/0')).toBe('redis://user:***@host:6379/0');
    expect(maskUrl('redis://:pw@host:6379/')).toBe('redis://:***@host:6379/');
    expect(maskUrl('redis://host:6379/')).toBe('redis://host:6379/');
  });
});
