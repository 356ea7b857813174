/**
 * `@rmqtt-ts/plugin-api/storage` — building blocks for storage plugins: the key-value layer with its
 * LMDB and Redis backends (drivers handed in by the plugin), key and value encodings.
 */
export { KvBatch, kvKey, kvKeyParts, type KvOp, type KvStore } from './kv.js';
export { decodeJson, decodeMessage, encodeJson, encodeMessage } from './codec.js';
export { openLmdbKv, type LmdbDatabase, type LmdbOpen, type LmdbOptions } from './lmdb.js';
export { REDIS_SHARDS, redisKv, type RedisClient, type RedisMulti } from './redis.js';
export { maskUrl, openStorage, storageSchema, type OpenStorageOptions, type RedisConnection, type StorageConfig, type StorageDrivers, type StorageType } from './open.js';
export { KvWriter } from './writer.js';
