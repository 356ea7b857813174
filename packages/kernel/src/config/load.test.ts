import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRmqttError } from '@rmqtt-ts/plugin-api';
import { afterAll, describe, expect, test } from 'vitest';
import { MASK, maskSecrets } from './engine.js';
import { LISTENER_KEYS } from './listener-schema.js';
import { loadBrokerConfig, loadBrokerConfigSync } from './load.js';
import { maskBrokerConfig } from './mask.js';
import type { ListenerConfig, LoadOptions } from './types.js';

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../..');
const RMQTT_SHIPPED = '/work/shared/reference/rmqtt-configs/rmqtt.toml';
const dir = mkdtempSync(join(tmpdir(), 'rmqtt-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileNo = 0;
/** Writes `toml` to a fresh file under the temp dir; returns its name relative to that dir. */
function tomlFile(toml: string): string {
  const name = `c${++fileNo}.toml`;
  writeFileSync(join(dir, name), toml);
  return name;
}

function load(toml: string | undefined, options: Omit<LoadOptions, 'file' | 'cwd'> = {}) {
  return loadBrokerConfigSync({ env: {}, ...options, cwd: dir, ...(toml === undefined ? {} : { file: tomlFile(toml) }) });
}

function refusal(toml: string | undefined, options: Omit<LoadOptions, 'file' | 'cwd'> = {}): { file: string; lines: string[] } {
  const file = `c${fileNo + 1}.toml`;
  try {
    load(toml, options);
  } catch (err) {
    expect(isRmqttError(err) && err.code === 'ERR_CONFIG').toBe(true);
    return { file, lines: (err as Error).message.split('\n') };
  }
  throw new Error('expected the config to be refused');
}

function listener(config: { listeners: ListenerConfig[] }, name: string): ListenerConfig {
  const found = config.listeners.find((l) => l.name === name);
  if (found === undefined) throw new Error(`no listener ${name}`);
  return found;
}

describe('the shipped files', () => {
  test('configs/rmqtt.toml loads with tcp.external, tcp.internal and ws.external, anonymous allowed, no warnings', async () => {
    const { config, warnings, file } = await loadBrokerConfig({ file: 'configs/rmqtt.toml', cwd: repoRoot, env: {} });
    expect(file).toBe(join(repoRoot, 'configs/rmqtt.toml'));
    expect(warnings).toEqual([]);
    expect(config.node.id).toBe(1);
    expect(config.log).toEqual({ to: 'console', level: 'info', dir: '/var/log/rmqtt', file: 'rmqtt.log' });
    expect(config.plugins).toEqual({ dir: './configs/plugins', defaultStartups: ['rmqtt-acl', 'rmqtt-retainer', 'rmqtt-session-storage', 'rmqtt-shared-subscription', 'rmqtt-http-api'], disabledDefaultStartups: [] });
    expect(config.mqtt).toEqual({ delayedPublishMax: 100_000, delayedPublishImmediate: true, maxSessions: 0 });
    expect(config.listeners.map((l) => l.name)).toEqual(['tcp.external', 'tcp.internal', 'ws.external']);
    for (const l of config.listeners) {
      expect(l.allowAnonymous).toBe(true);
      expect(l.addr.host).toBe('0.0.0.0');
      expect(l.mqueueRateLimit).toBeNull();
    }
    expect(listener(config, 'tcp.external')).toMatchObject({ addr: { port: 1883 }, handshakeTimeoutMs: 30_000, maxPacketSize: 1_048_576, maxTopicAliases: 32, messageRetryIntervalMs: 20_000 });
    expect(listener(config, 'tcp.internal')).toMatchObject({ addr: { port: 11883 }, maxInflight: 128, backlog: 512, maxConnections: 102_400 });
    expect(listener(config, 'ws.external')).toMatchObject({ type: 'ws', addr: { port: 8080 } });
    expect(listener(config, 'ws.external').wsPath).toBeUndefined();
  });

  test("RMQTT's own rmqtt.toml loads unchanged, with one warning naming what is not implemented", () => {
    const { config, warnings } = loadBrokerConfigSync({ file: RMQTT_SHIPPED, env: {} });
    expect(config.listeners.map((l) => l.name)).toEqual(['tcp.external', 'tcp.internal', 'tls.external', 'ws.external', 'wss.external']);
    expect(listener(config, 'tcp.external').mqueueRateLimit).toEqual({ burst: 1000, periodMs: 1000 });
    expect(listener(config, 'tls.external')).toMatchObject({ cert: './rmqtt-bin/rmqtt.pem', key: './rmqtt-bin/rmqtt.key', crossCertificate: false, allowAnonymous: false });
    expect(config.plugins.dir).toBe('rmqtt-plugins/');
    expect(warnings).toHaveLength(1);
    const warning = warnings[0] as string;
    for (const key of ['task.exec_workers', 'task.exec_queue_max', 'rpc.server_addr', 'node.busy.check_enable', 'listener.tcp.external.workers', 'listener.tls.external.cert_subject_dn_as_username', 'listener.tls.external.collect_cert_info', 'listener.quic.external (QUIC, not started)']) {
      expect(warning).toContain(key);
    }
    expect(warning.startsWith(`${RMQTT_SHIPPED}: `)).toBe(true);
  });
});

describe('defaults', () => {
  test("no file: RMQTT's default tcp.external on 0.0.0.0:1883 with RMQTT's code defaults", () => {
    const { config, warnings, file } = load(undefined);
    expect(file).toBeUndefined();
    expect(warnings).toEqual([]);
    expect(config.node).toEqual({ id: 0, cookie: 'rmqttsecretcookie' });
    expect(config.plugins).toEqual({ dir: './configs/plugins', defaultStartups: [], disabledDefaultStartups: [] });
    expect(config.cluster).toEqual({ nodeGrpcAddrs: [], raftPeerAddrs: [], raftLeaderId: 0 });
    expect(config.listeners).toEqual([
      {
        name: 'tcp.external', type: 'tcp', enable: true, addr: { host: '0.0.0.0', port: 1883 },
        maxConnections: 1_024_000, maxHandshakingLimit: 500, handshakeTimeoutMs: 15_000, maxPacketSize: 1_048_576,
        backlog: 1024, nodelay: false, tcpKeepalive: true, allowAnonymous: false,
        minKeepalive: 0, maxKeepalive: 65535, allowZeroKeepalive: true, keepaliveBackoff: 0.75,
        maxInflight: 16, maxMqueueLen: 1000, mqueueRateLimit: null, maxClientidLen: 65535, maxQosAllowed: 2, maxTopicLevels: 0,
        sessionExpiryIntervalS: 7200, maxSessionExpiryIntervalS: 0, messageRetryIntervalMs: 30_000, messageExpiryIntervalS: 300,
        maxSubscriptions: 0, maxTopicAliases: 0, maxAwaitingRel: 100, limitSubscription: false, delayedPublish: false,
        proxyProtocol: false, proxyProtocolTimeoutMs: 5000, maxConnRate: 0, maxMessageRate: null, maxByteRate: null,
        crossCertificate: false, certCnAsUsername: false,
      },
    ]);
  });

  test('every mapped listener key of the table appears in ListenerConfig', () => {
    const tls = listener(load('listener.tls.a.cert = "c"\nlistener.tls.a.key = "k"\nlistener.tls.a.client_ca_certs = "ca"\n').config, 'tls.a');
    const ws = listener(load('listener.ws.a.ws_path = "/mqtt"\n').config, 'ws.a');
    const props = new Set([...Object.keys(tls), ...Object.keys(ws)]);
    expect(LISTENER_KEYS.filter((k) => k.mapped !== false).length + 2).toBe(props.size);
    expect(ws.wsPath).toBe('/mqtt');
    expect(tls).toMatchObject({ cert: 'c', key: 'k', clientCaCerts: 'ca', addr: { port: 8883 } });
  });

  test('a file with no tcp or tls listener gets the default tcp.external; one with tls does not', () => {
    expect(load('listener.ws.a.addr = "0.0.0.0:9001"\n').config.listeners.map((l) => l.name)).toEqual(['tcp.external', 'ws.a']);
    expect(load('listener.tls.a.cert = "c"\nlistener.tls.a.key = "k"\n').config.listeners.map((l) => l.name)).toEqual(['tls.a']);
  });

  test('disabled listeners are kept with enable = false, in file order', () => {
    const { config } = load('[listener.tcp.b]\nenable = false\naddr = "0.0.0.0:2"\n[listener.tcp.a]\naddr = "0.0.0.0:1"\n');
    expect(config.listeners.map((l) => [l.name, l.enable])).toEqual([['tcp.b', false], ['tcp.a', true]]);
  });

  test('max_packet_size 0 means the MQTT maximum', () => {
    expect(listener(load('listener.tcp.a.max_packet_size = 0\n').config, 'tcp.a').maxPacketSize).toBe(268_435_460);
  });

  test('a QUIC listener is accepted with a warning naming it and not started', () => {
    const { config, warnings, properties } = load('listener.quic.q.addr = "0.0.0.0:9443"\nlistener.quic.q.idle_timeout = "120s"\n');
    expect(config.listeners.map((l) => l.name)).toEqual(['tcp.external']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('listener.quic.q (QUIC, not started)');
    expect(properties).toHaveProperty('listener.quic.q.idle_timeout', 120_000);
  });
});

describe('environment, values and flags', () => {
  test('RMQTT_ variables map to keys and are coerced by format', () => {
    const { config } = load(undefined, {
      env: {
        RMQTT_NODE__ID: '2',
        RMQTT_LISTENER__TCP__EXTERNAL__ADDR: '127.0.0.1:0',
        RMQTT_LISTENER__TCP__EXTERNAL__ALLOW_ANONYMOUS: 'true',
        RMQTT_LISTENER__TCP__EXTERNAL__HANDSHAKE_TIMEOUT: '2500ms',
        RMQTT_LISTENER__TCP__EXTERNAL__MAX_BYTE_RATE: '1MB,1s',
        RMQTT_PLUGINS__DEFAULT_STARTUPS: 'rmqtt-retainer, rmqtt-http-api rmqtt-acl',
        RMQTT_PLUGIN_RETAINER__STORAGE__TYPE: 'ram',
        PATH: '/usr/bin',
      },
    });
    expect(config.node.id).toBe(2);
    expect(config.plugins.defaultStartups).toEqual(['rmqtt-retainer', 'rmqtt-http-api', 'rmqtt-acl']);
    expect(listener(config, 'tcp.external')).toMatchObject({ addr: { host: '127.0.0.1', port: 0 }, allowAnonymous: true, handshakeTimeoutMs: 2500, maxByteRate: { burst: 1_048_576, periodMs: 1000 } });
  });

  test('a listener named only in the environment gets its subtree', () => {
    const { config } = load('listener.tcp.external.addr = "0.0.0.0:1883"\n', { env: { RMQTT_LISTENER__WS__EDGE__ADDR: '127.0.0.1:0' } });
    expect(config.listeners.map((l) => l.name)).toEqual(['tcp.external', 'ws.edge']);
    expect(listener(config, 'ws.edge')).toMatchObject({ addr: { host: '127.0.0.1', port: 0 }, maxInflight: 16 });
  });

  test('precedence: file < environment < values < flags', () => {
    const toml = 'node.id = 1\nplugins.default_startups = ["from-file"]\n';
    expect(load(toml).config.node.id).toBe(1);
    expect(load(toml, { env: { RMQTT_NODE__ID: '2' } }).config.node.id).toBe(2);
    expect(load(toml, { env: { RMQTT_NODE__ID: '2' }, values: { 'node.id': 3 } }).config.node.id).toBe(3);
    const flagged = load(toml, { env: { RMQTT_NODE__ID: '2' }, values: { 'node.id': 3 }, overrides: { nodeId: 4, defaultStartups: ['from-flag'] } }).config;
    expect(flagged.node.id).toBe(4);
    expect(flagged.plugins.defaultStartups).toEqual(['from-flag']);
  });

  test('--id 0 does not override node.id (as RMQTT)', () => {
    expect(load('node.id = 7\n', { overrides: { nodeId: 0 } }).config.node.id).toBe(7);
  });

  test('values may name a listener (the test kit binds to port 0 this way)', () => {
    const { config } = load(undefined, { values: { 'listener.tcp.external.addr': '127.0.0.1:0', 'listener.tcp.external.allow_anonymous': true } });
    expect(listener(config, 'tcp.external')).toMatchObject({ addr: { host: '127.0.0.1', port: 0 }, allowAnonymous: true });
  });

  test('cluster flags are kept', () => {
    const { config } = load(undefined, { overrides: { nodeGrpcAddrs: ['1@10.0.0.1:5363', '2@10.0.0.2:5363'], raftPeerAddrs: ['1@10.0.0.1:6003'], raftLeaderId: 1 } });
    expect(config.cluster).toEqual({ nodeGrpcAddrs: ['1@10.0.0.1:5363', '2@10.0.0.2:5363'], raftPeerAddrs: ['1@10.0.0.1:6003'], raftLeaderId: 1 });
  });
});

describe('refusals', () => {
  test('an unknown key names the file and the key', () => {
    const { file, lines } = refusal('listener.tcp.external.max_inflght = 4\n');
    expect(lines).toEqual([`${file}: listener.tcp.external.max_inflght: unknown key (did you mean "max_inflight"?)`]);
  });

  test('a bad value names the file, the key and what was expected', () => {
    const { file, lines } = refusal('listener.tcp.external.max_inflight = "abc"\n');
    expect(lines).toEqual([`${file}: listener.tcp.external.max_inflight: expected an integer from 1 to 65535, got "abc"`]);
  });

  test('an unknown RMQTT_ variable stops start-up, naming it', () => {
    const { lines } = refusal(undefined, { env: { RMQTT_NODE__IDD: '1' } });
    expect(lines).toEqual(['environment variable RMQTT_NODE__IDD: node.idd: unknown key (did you mean "id"?)']);
  });

  test('a bad value in a variable names the variable', () => {
    const { lines } = refusal(undefined, { env: { RMQTT_LISTENER__TCP__EXTERNAL__NODELAY: 'maybe' } });
    expect(lines).toEqual(['environment variable RMQTT_LISTENER__TCP__EXTERNAL__NODELAY: listener.tcp.external.nodelay: expected true or false, got "maybe"']);
  });

  test('a bad flag names the flag', () => {
    expect(refusal(undefined, { overrides: { nodeId: -3 } }).lines).toEqual(['command-line flag --id: node.id: expected an integer ≥ 0, got -3']);
    expect(refusal(undefined, { overrides: { nodeGrpcAddrs: ['10.0.0.1:5363'] } }).lines[0]).toMatch(/^command-line flag --node-grpc-addrs: expected "id@host:port"/);
  });

  test('a TOML syntax error names the file, line and column', () => {
    const { file, lines } = refusal('node.id = 1\nlog.to = = "x"\n');
    expect(lines).toEqual([`${file}: line 2, column 10: invalid TOML: invalid value`]);
  });

  test('a missing file is named', () => {
    expect(() => loadBrokerConfigSync({ file: 'nope.toml', cwd: dir, env: {} })).toThrow('nope.toml: cannot read the config file: no such file');
  });

  test('all problems are reported together', () => {
    const { file, lines } = refusal('node.id = "one"\nlog.level = "loud"\nlisten.tcp = 1\nlistener.tcp.external.max_qos_allowed = 3\n', { env: { RMQTT_MQTT__MAX_SESSIONS: '-1' } });
    expect(lines).toEqual([
      `${file}: node.id: expected an integer ≥ 0, got "one"`,
      `${file}: log.level: expected one of "trace", "debug", "info", "warn", "error", got "loud"`,
      `${file}: listener.tcp.external.max_qos_allowed: expected an integer from 0 to 2, got 3`,
      `${file}: listen: unknown key (did you mean "listener"?)`,
      'environment variable RMQTT_MQTT__MAX_SESSIONS: mqtt.max_sessions: expected an integer ≥ 0, got -1',
    ]);
  });

  test('keepalive_backoff 0.5 is refused, 1.0 accepted', () => {
    expect(refusal('listener.tcp.external.keepalive_backoff = 0.5\n').lines[0]).toMatch(/listener\.tcp\.external\.keepalive_backoff: expected a number above 0\.5 and at most 1, got 0\.5$/);
    expect(listener(load('listener.tcp.external.keepalive_backoff = 1.0\n').config, 'tcp.external').keepaliveBackoff).toBe(1);
  });

  test('a key that belongs to another listener type says which types take it', () => {
    expect(refusal('listener.tcp.external.cert = "x.pem"\n').lines[0]).toMatch(/listener\.tcp\.external\.cert: unknown key \(cert applies only to tls, wss, quic listeners\)$/);
    expect(refusal('listener.udp.a.addr = "0.0.0.0:1"\n').lines[0]).toMatch(/listener\.udp: unknown key \(listener types are tcp, tls, ws, wss, quic\)$/);
  });

  test('a single value where a table belongs, and a table under a single value', () => {
    expect(refusal('node = 5\n').lines[0]).toMatch(/: node: expected a table of settings, got 5$/);
    // A TOML table at a setting is that setting's value, and its format refuses it.
    expect(refusal('listener.tcp.external.addr.port = 5\n').lines[0]).toMatch(/listener\.tcp\.external\.addr: expected an address "host:port" .*, got \{"port":5\}$/);
    expect(refusal(undefined, { env: { RMQTT_LISTENER__TCP__EXTERNAL__ADDR__PORT: '5' } }).lines).toEqual([
      'environment variable RMQTT_LISTENER__TCP__EXTERNAL__ADDR__PORT: listener.tcp.external.addr.port: unknown key (listener.tcp.external.addr is a single setting, not a table)',
    ]);
  });

  test('an enabled tls listener needs cert and key (their files are checked when it starts)', () => {
    const { file, lines } = refusal('listener.tls.a.cert = "c.pem"\n');
    expect(lines).toEqual([`${file}: listener.tls.a.key: required for an enabled tls listener`]);
    expect(load('listener.tls.a.enable = false\n').config.listeners.map((l) => l.name)).toEqual(['tls.a']);
  });

  test('two enabled listeners on one port, and min_keepalive above max_keepalive', () => {
    const { file, lines } = refusal('listener.tcp.a.addr = "0.0.0.0:1883"\nlistener.ws.b.addr = "127.0.0.1:1883"\nlistener.tcp.a.min_keepalive = 60\nlistener.tcp.a.max_keepalive = 30\n');
    expect(lines).toEqual([`${file}: listener.tcp.a.min_keepalive: must not exceed max_keepalive (30), got 60`, `${file}: listener.ws.b.addr: port 1883 is already used by listener.tcp.a`]);
    expect(load('listener.tcp.a.addr = "127.0.0.1:0"\nlistener.tcp.b.addr = "127.0.0.1:0"\n').config.listeners).toHaveLength(2);
  });

  test('a bad listener name is reported once', () => {
    const { lines } = refusal('[listener.tcp."my listener"]\naddr = "0.0.0.0:1"\nmax_inflight = 3\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/listener\.tcp\.my listener: a listener name may hold only letters, digits, "_" and "-"$/);
  });
});

describe('secrets', () => {
  test('node.cookie is sensitive: never echoed in errors, masked for display, warned about until clustering', () => {
    expect(refusal('node.cookie = 12345\n').lines[0]).toMatch(/node\.cookie: expected a string, got a hidden value$/);
    const loaded = load('node.cookie = "s3cret"\n');
    expect(loaded.config.node.cookie).toBe('s3cret');
    expect(loaded.warnings[0]).toContain('node.cookie');
    expect(maskBrokerConfig(loaded.config).node.cookie).toBe(MASK);
    expect(loaded.config.node.cookie).toBe('s3cret');
    const masked = maskSecrets(loaded.properties, loaded.schema);
    expect(masked).toHaveProperty('node.cookie', MASK);
    expect(masked).toHaveProperty('node.id', 0);
  });
});

describe('several files', () => {
  test('apply in order: a later file overrides keys and adds listeners', () => {
    const base = tomlFile('listener.tcp.external.addr = "0.0.0.0:1883"\nlistener.tcp.external.max_mqueue_len = 1000\nlistener.tcp.external.max_inflight = 8\n');
    const over = tomlFile('listener.tcp.external.addr = "127.0.0.1:0"\nlistener.tcp.external.max_mqueue_len = 100000\nlistener.ws.extra.addr = "127.0.0.1:0"\n');
    const loaded = loadBrokerConfigSync({ env: {}, cwd: dir, file: [base, over] });
    const ext = listener(loaded.config, 'tcp.external');
    expect(ext.addr).toEqual({ host: '127.0.0.1', port: 0 });
    expect(ext.maxMqueueLen).toBe(100000);
    expect(ext.maxInflight).toBe(8);
    expect(listener(loaded.config, 'ws.extra').type).toBe('ws');
    expect(loaded.files).toEqual([join(dir, base), join(dir, over)]);
  });

  test('a bad key is reported against the file that has it', () => {
    const base = tomlFile('listener.tcp.external.max_inflight = 8\n');
    const over = tomlFile('listener.tcp.external.max_inflight = "lots"\n');
    let message = '';
    try {
      loadBrokerConfigSync({ env: {}, cwd: dir, file: [base, over] });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain(`${over}: listener.tcp.external.max_inflight`);
    expect(message).not.toContain(`${base}:`);
  });
});
