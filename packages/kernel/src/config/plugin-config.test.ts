import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { MASK, maskSecrets } from './engine.js';
import { Formats, oneOfFormat } from './formats.js';
import { loadPluginConfig } from './plugin-config.js';

const REFERENCE = '/work/shared/reference/rmqtt-configs/plugins';
const root = mkdtempSync(join(tmpdir(), 'rmqtt-plugin-config-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let dirNo = 0;
/** A fresh plugins dir (relative to `root`) holding the given files. */
function pluginsDir(files: Record<string, string> = {}): string {
  const rel = `plugins${++dirNo}`;
  mkdirSync(join(root, rel));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(root, rel, name), text);
  return rel;
}

/** Mirrors the keys of RMQTT's rmqtt-retainer.toml (the plugin's real schema comes with the plugin). */
const retainerSchema = {
  storage: {
    type: { doc: 'ram, sled or redis', format: oneOfFormat(['ram', 'sled', 'redis']), default: 'ram' },
    sled: {
      path: { format: Formats.string, default: '/var/log/rmqtt/.cache/retain/{node}' },
      cache_capacity: { format: Formats.size, default: '3G' },
    },
    redis: {
      url: { format: Formats.string, default: 'redis://127.0.0.1:6379/', sensitive: true },
      prefix: { format: Formats.string, default: 'retain' },
    },
  },
  max_retained_messages: { format: Formats.uint, default: 0 },
  max_payload_size: { format: Formats.size, default: '1MB' },
  retained_message_ttl: { format: Formats.duration, default: 0 },
  batch_messages_limit: { format: Formats.uint, default: 500 },
  backend_timeout: { format: Formats.duration, default: '8s', notImplemented: true },
};

const sharedSchema = {
  strategy: { format: oneOfFormat(['random', 'round_robin', 'round_robin_per_group', 'sticky', 'local', 'hash_clientid', 'hash_topic']), default: 'round_robin' },
  sticky_cache_size: { format: Formats.uint, default: 100_000 },
};

describe("RMQTT's shipped plugin files", () => {
  test('rmqtt-retainer.toml validates, nested keys included, units converted', () => {
    const dir = pluginsDir();
    copyFileSync(join(REFERENCE, 'rmqtt-retainer.toml'), join(root, dir, 'rmqtt-retainer.toml'));
    const result = loadPluginConfig({ name: 'retainer', schema: retainerSchema, dir, cwd: root, env: {} });
    expect(result.found).toBe(true);
    expect(result.file).toBe(join(root, dir, 'rmqtt-retainer.toml'));
    expect(result.warnings).toEqual([]);
    expect(result.config).toEqual({
      storage: { type: 'ram', sled: { path: '/var/log/rmqtt/.cache/retain/{node}', cache_capacity: 3 * 1024 ** 3 }, redis: { url: 'redis://127.0.0.1:6379/', prefix: 'retain' } },
      max_retained_messages: 0,
      max_payload_size: 1_048_576,
      retained_message_ttl: 0,
      batch_messages_limit: 500,
      backend_timeout: 8000,
    });
  });

  test('rmqtt-shared-subscription.toml validates', () => {
    const result = loadPluginConfig({ name: 'rmqtt-shared-subscription', schema: sharedSchema, dir: REFERENCE, env: {} });
    expect(result).toMatchObject({ found: true, config: { strategy: 'round_robin', sticky_cache_size: 100_000 } });
  });
});

describe('loadPluginConfig', () => {
  test('"retainer" and "rmqtt-retainer" read the same file', () => {
    const dir = pluginsDir({ 'rmqtt-retainer.toml': 'max_retained_messages = 5\n' });
    for (const name of ['retainer', 'rmqtt-retainer']) {
      expect(loadPluginConfig({ name, schema: retainerSchema, dir, cwd: root, env: {} }).config['max_retained_messages']).toBe(5);
    }
  });

  test('a missing file means schema defaults, found = false', () => {
    const dir = pluginsDir();
    const result = loadPluginConfig({ name: 'retainer', schema: retainerSchema, dir, cwd: root, env: {} });
    expect(result.found).toBe(false);
    expect(result.file).toBe(join(root, dir, 'rmqtt-retainer.toml'));
    expect(result.config).toMatchObject({ max_payload_size: 1_048_576, storage: { sled: { cache_capacity: 3 * 1024 ** 3 } }, retained_message_ttl: 0 });
  });

  test('a bad value names the file, the key and what was expected; all problems together', () => {
    const dir = pluginsDir({ 'rmqtt-retainer.toml': 'storage.type = "disk"\nstorage.sled.cache_capacity = "lots"\nstorage.sled.pth = "/x"\n' });
    const file = join(dir, 'rmqtt-retainer.toml');
    expect(() => loadPluginConfig({ name: 'retainer', schema: retainerSchema, dir, cwd: root, env: {} })).toThrow(
      [
        `${file}: storage.type: expected one of "ram", "sled", "redis", got "disk"`,
        `${file}: storage.sled.cache_capacity: expected a size such as "512K", "1MB", "3G" or a number of bytes, got "lots"`,
        `${file}: storage.sled.pth: unknown key (did you mean "path"?)`,
      ].join('\n'),
    );
  });

  test('a TOML syntax error names the file and line', () => {
    const dir = pluginsDir({ 'rmqtt-retainer.toml': 'max_retained_messages = 5\n[storage\n' });
    expect(() => loadPluginConfig({ name: 'retainer', schema: retainerSchema, dir, cwd: root, env: {} })).toThrow(/rmqtt-retainer\.toml: line 2, column \d+: invalid TOML/);
  });

  test('RMQTT_PLUGIN_{NAME}__KEY__SUB overrides the file; RMQTT\'s RMQTT_PLUGIN_RMQTT_{NAME}__… works too', () => {
    const dir = pluginsDir({ 'rmqtt-shared-subscription.toml': 'strategy = "random"\n' });
    const base = { name: 'shared-subscription', schema: sharedSchema, dir, cwd: root };
    expect(loadPluginConfig({ ...base, env: {} }).config['strategy']).toBe('random');
    expect(loadPluginConfig({ ...base, env: { RMQTT_PLUGIN_SHARED_SUBSCRIPTION__STRATEGY: 'sticky', RMQTT_PLUGIN_SHARED_SUBSCRIPTION__STICKY_CACHE_SIZE: '10' } }).config).toEqual({ strategy: 'sticky', sticky_cache_size: 10 });
    expect(loadPluginConfig({ ...base, env: { RMQTT_PLUGIN_RMQTT_SHARED_SUBSCRIPTION__STRATEGY: 'local' } }).config['strategy']).toBe('local');
    const retainer = loadPluginConfig({ name: 'retainer', schema: retainerSchema, dir, cwd: root, env: { RMQTT_PLUGIN_RETAINER__STORAGE__SLED__CACHE_CAPACITY: '512K', RMQTT_PLUGIN_OTHER__X: '1' } });
    expect(retainer.config).toMatchObject({ storage: { sled: { cache_capacity: 524_288 } } });
  });

  test('an unknown or bad plugin variable names it', () => {
    const dir = pluginsDir();
    expect(() => loadPluginConfig({ name: 'shared-subscription', schema: sharedSchema, dir, cwd: root, env: { RMQTT_PLUGIN_SHARED_SUBSCRIPTION__STRATEGI: 'x', RMQTT_PLUGIN_SHARED_SUBSCRIPTION__STICKY_CACHE_SIZE: 'big' } })).toThrow(
      [
        'environment variable RMQTT_PLUGIN_SHARED_SUBSCRIPTION__STICKY_CACHE_SIZE: sticky_cache_size: expected an integer ≥ 0, got "big"',
        'environment variable RMQTT_PLUGIN_SHARED_SUBSCRIPTION__STRATEGI: strategi: unknown key (did you mean "strategy"?)',
      ].join('\n'),
    );
  });

  test('can be called again after the file changed (reload)', () => {
    const dir = pluginsDir({ 'rmqtt-shared-subscription.toml': 'strategy = "random"\n' });
    const options = { name: 'shared-subscription', schema: sharedSchema, dir, cwd: root, env: {} };
    expect(loadPluginConfig(options).config['strategy']).toBe('random');
    writeFileSync(join(root, dir, 'rmqtt-shared-subscription.toml'), 'strategy = "hash_topic"\n');
    expect(loadPluginConfig(options).config['strategy']).toBe('hash_topic');
  });

  test('keys a plugin marks notImplemented produce one warning when set', () => {
    const dir = pluginsDir({ 'rmqtt-retainer.toml': 'backend_timeout = "3s"\n' });
    const result = loadPluginConfig({ name: 'retainer', schema: retainerSchema, dir, cwd: root, env: {} });
    expect(result.warnings).toEqual([`${join(dir, 'rmqtt-retainer.toml')}: settings accepted but not implemented by rmqtt-ts (they have no effect): backend_timeout`]);
    expect(result.config['backend_timeout']).toBe(3000);
  });

  test('arrays of tables and convict built-in formats pass through', () => {
    const dir = pluginsDir({ 'rmqtt-acl.toml': 'port = 8080\nenabled = true\n[[rules]]\naction = "allow"\n[[rules]]\naction = "deny"\n' });
    const schema = {
      port: { format: 'port', default: 1 },
      enabled: { format: Boolean, default: false },
      rules: {
        default: [],
        format: function rules(v: unknown) {
          if (!Array.isArray(v)) throw new Error('must be a list of rules');
        },
      },
    };
    const result = loadPluginConfig({ name: 'acl', schema, dir, cwd: root, env: { RMQTT_PLUGIN_ACL__PORT: '9090' } });
    expect(result.config).toEqual({ port: 9090, enabled: true, rules: [{ action: 'allow' }, { action: 'deny' }] });
    writeFileSync(join(root, dir, 'rmqtt-acl.toml'), 'rules = 5\n');
    expect(() => loadPluginConfig({ name: 'acl', schema, dir, cwd: root, env: {} })).toThrow(`${join(dir, 'rmqtt-acl.toml')}: rules: must be a list of rules, got 5`);
  });

  test('sensitive settings are masked for display', () => {
    const result = loadPluginConfig({ name: 'retainer', schema: retainerSchema, dir: pluginsDir(), cwd: root, env: {} });
    const masked = maskSecrets(result.config, retainerSchema);
    expect(masked).toHaveProperty('storage.redis.url', MASK);
    expect(masked).toHaveProperty('storage.redis.prefix', 'retain');
    expect(result.config).toHaveProperty('storage.redis.url', 'redis://127.0.0.1:6379/');
  });
});
