import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { MqttClient } from 'mqtt';
import {
  definePlugin,
  type Logger,
  type Message,
  type PluginContext,
  type PluginDefinition,
  type RetainStore,
  type RmqttError,
} from '@rmqtt-ts/plugin-api';
// the kernel's own package does not depend on the test kit (the test kit depends on the kernel)
import { RawClient, connectClient, endClient, recorder, startBroker, type TestBroker, type TestBrokerOptions } from '../../../testkit/src/index.js';

const WORKSPACE = fileURLToPath(new URL('../../../../', import.meta.url));
const FIXTURES = join(WORKSPACE, 'test/fixtures/plugins');
const PLUGIN_API = join(WORKSPACE, 'packages/plugin-api');

// ---------- helpers ----------

const brokers: TestBroker[] = [];
const mqttClients: MqttClient[] = [];
const rawClients: RawClient[] = [];
const tempDirs: string[] = [];

async function broker(options: TestBrokerOptions = {}): Promise<TestBroker> {
  const b = await startBroker(options);
  brokers.push(b);
  return b;
}

async function client(url: string, options: Parameters<typeof connectClient>[1] = {}): Promise<MqttClient> {
  const c = await connectClient(url, options);
  mqttClients.push(c);
  return c;
}

async function raw5(port: number): Promise<Awaited<ReturnType<typeof RawClient.connect>>> {
  const r = await RawClient.connect(port, { protocolVersion: 5 });
  rawClients.push(r.client);
  return r;
}

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

afterEach(async () => {
  for (const r of rawClients.splice(0)) r.destroy();
  await Promise.all(mqttClients.splice(0).map((c) => endClient(c, true)));
  await Promise.all(brokers.splice(0).map((b) => b.stop()));
});

afterAll(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

/** A logger that keeps every line, to check what start-up logged. */
function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger: logger as unknown as Logger, lines };
}

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<RmqttError> {
  try {
    await p;
  } catch (err) {
    return err as RmqttError;
  }
  throw new Error('expected the promise to reject');
}

function thrown(fn: () => unknown): RmqttError {
  try {
    fn();
  } catch (err) {
    return err as RmqttError;
  }
  throw new Error('expected a throw');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface ProbeOptions {
  immutable?: boolean;
  dependsOn?: string[];
  configSchema?: Record<string, unknown>;
  /** What stop() returns. */
  stopResult?: boolean;
  /** Append `+name` to every published payload while started. */
  tag?: boolean;
  provide?: (ctx: PluginContext) => void;
  reload?: (config: Record<string, unknown>) => void;
}

interface Probe {
  def: PluginDefinition;
  /** Lifecycle calls in order, with the state the control API reported during init and start. */
  calls: string[];
  ctx: PluginContext | undefined;
}

/** A test plugin that records its lifecycle. */
function probe(name: string, o: ProbeOptions = {}): Probe {
  const p: Probe = { def: undefined as unknown as PluginDefinition, calls: [], ctx: undefined };
  p.def = definePlugin({
    name,
    apiVersion: '^1.0.0',
    immutable: o.immutable,
    dependsOn: o.dependsOn,
    configSchema: o.configSchema,
    create(ctx) {
      p.ctx = ctx;
      p.calls.push('create');
      const state = (): string => ctx.broker.control.plugin(name)?.state ?? 'unknown';
      return {
        init() {
          p.calls.push(`init:${state()}`);
          if (o.tag) ctx.hooks.on('message.publish', (m) => ({ ...m, payload: Buffer.concat([m.payload, Buffer.from(`+${name}`)]) }));
          o.provide?.(ctx);
        },
        start() {
          p.calls.push(`start:${state()}`);
        },
        stop() {
          p.calls.push('stop');
          return o.stopResult;
        },
        reload(config) {
          p.calls.push('reload');
          o.reload?.(config);
        },
      };
    },
  });
  return p;
}

/** A minimal in-memory RetainStore (exact topics only: enough to observe which store is in force). */
class MapRetainStore implements RetainStore {
  readonly map = new Map<string, Message>();
  set(m: Message): boolean {
    this.map.set(m.topic, m);
    return true;
  }
  delete(topic: string): boolean {
    return this.map.delete(topic);
  }
  get(topic: string): Message | undefined {
    return this.map.get(topic);
  }
  match(filter: string): Message[] {
    const m = this.map.get(filter);
    return m === undefined ? [] : [m];
  }
  count(): number {
    return this.map.size;
  }
}

/** Publish once (QoS 1) and return the payload the subscriber got. */
async function roundTrip(pub: MqttClient, rec: ReturnType<typeof recorder>, topic: string, payload: string): Promise<string> {
  await pub.publishAsync(topic, payload, { qos: 1 });
  return (await rec.next()).payload.toString();
}

// ---------- lifecycle ----------

describe('plugin lifecycle through a running broker', () => {
  it('goes registered → inited → started, calling create, init and start once', async () => {
    const p = probe('life');
    const b = await broker({ plugins: [p.def], startups: [] });
    expect(b.broker.control.plugin('life')).toMatchObject({ name: 'life', state: 'registered', inited: false, active: false });
    expect(p.calls).toEqual([]);
    await b.broker.control.startPlugin('life');
    expect(p.calls).toEqual(['create', 'init:inited', 'start:inited']);
    expect(b.broker.control.plugin('life')).toMatchObject({ state: 'started', inited: true, active: true, immutable: false });
  });

  it('starts the plugins of default_startups at boot', async () => {
    const p = probe('boot');
    const b = await broker({ plugins: [p.def] });
    expect(p.calls).toEqual(['create', 'init:inited', 'start:inited']);
    expect(b.broker.control.plugin('boot')?.state).toBe('started');
  });

  it('stops and starts again; its hooks are off while stopped and on again after', async () => {
    const p = probe('tagger', { tag: true });
    const b = await broker({ plugins: [p.def] });
    const sub = await client(b.url());
    const pub = await client(b.url());
    const rec = recorder(sub);
    await sub.subscribeAsync('life/#', { qos: 1 });

    expect(await roundTrip(pub, rec, 'life/a', 'one')).toBe('one+tagger');

    expect(await b.broker.control.stopPlugin('tagger')).toBe(true);
    expect(b.broker.control.plugin('tagger')).toMatchObject({ state: 'stopped', active: false });
    expect(b.broker.hooks.has('message.publish')).toBe(false);
    expect(await roundTrip(pub, rec, 'life/a', 'two')).toBe('two');

    await b.broker.control.startPlugin('tagger');
    expect(b.broker.control.plugin('tagger')).toMatchObject({ state: 'started', active: true });
    expect(await roundTrip(pub, rec, 'life/a', 'three')).toBe('three+tagger');
    // init runs once: a restart only switches the registered hooks back on
    expect(p.calls).toEqual(['create', 'init:inited', 'start:inited', 'stop', 'start:stopped']);
  });

  it('a plugin whose stop() returns false stays started with its hooks on, and stopPlugin resolves false', async () => {
    const p = probe('stubborn', { tag: true, stopResult: false });
    const b = await broker({ plugins: [p.def] });
    const sub = await client(b.url());
    const pub = await client(b.url());
    const rec = recorder(sub);
    await sub.subscribeAsync('keep/#', { qos: 1 });

    expect(await b.broker.control.stopPlugin('stubborn')).toBe(false);
    expect(p.calls).toContain('stop');
    expect(b.broker.control.plugin('stubborn')).toMatchObject({ state: 'started', active: true });
    expect(await roundTrip(pub, rec, 'keep/a', 'x')).toBe('x+stubborn');
  });

  it('stopping a plugin that is not started fails with ERR_PLUGIN_STATE', async () => {
    const p = probe('idle');
    const b = await broker({ plugins: [p.def], startups: [] });
    const err = await rejection(b.broker.control.stopPlugin('idle'));
    expect(err.code).toBe('ERR_PLUGIN_STATE');
    expect(err.message).toContain('idle');
  });

  it('an unknown plugin name at run time fails with ERR_PLUGIN_NOT_FOUND', async () => {
    const b = await broker();
    const err = await rejection(b.broker.control.stopPlugin('never-heard-of-it'));
    expect(err.code).toBe('ERR_PLUGIN_NOT_FOUND');
    expect(err.message).toContain('never-heard-of-it');
  });
});

describe('immutable plugins', () => {
  it('start at boot through default_startups', async () => {
    const p = probe('frozen', { immutable: true });
    const b = await broker({ plugins: [p.def] });
    expect(b.broker.control.plugin('frozen')).toMatchObject({ state: 'started', immutable: true });
  });

  it('cannot be stopped at run time (ERR_PLUGIN_IMMUTABLE) and stay started', async () => {
    const p = probe('frozen', { immutable: true, tag: true });
    const b = await broker({ plugins: [p.def] });
    const err = await rejection(b.broker.control.stopPlugin('frozen'));
    expect(err.code).toBe('ERR_PLUGIN_IMMUTABLE');
    expect(err.message).toContain('frozen');
    expect(p.calls).not.toContain('stop');
    expect(b.broker.control.plugin('frozen')?.state).toBe('started');
    expect(b.broker.hooks.has('message.publish')).toBe(true);
  });

  it('cannot be started at run time (ERR_PLUGIN_IMMUTABLE)', async () => {
    const p = probe('frozen', { immutable: true });
    const b = await broker({ plugins: [p.def], startups: [] });
    const err = await rejection(b.broker.control.startPlugin('frozen'));
    expect(err.code).toBe('ERR_PLUGIN_IMMUTABLE');
    expect(err.message).toContain('frozen');
    expect(p.calls).toEqual([]);
    expect(b.broker.control.plugin('frozen')?.state).toBe('registered');
  });

  it('cannot be reloaded at run time (ERR_PLUGIN_IMMUTABLE)', async () => {
    const p = probe('frozen', { immutable: true });
    const b = await broker({ plugins: [p.def] });
    const err = await rejection(b.broker.control.reloadPlugin('frozen'));
    expect(err.code).toBe('ERR_PLUGIN_IMMUTABLE');
    expect(p.calls).not.toContain('reload');
  });
});

describe('plugin dependencies', () => {
  it('starting a plugin whose dependency is not started fails with ERR_PLUGIN_DEPENDENCY', async () => {
    const base = probe('base');
    const app = probe('app', { dependsOn: ['base'] });
    const b = await broker({ plugins: [base.def, app.def], startups: [] });
    const err = await rejection(b.broker.control.startPlugin('app'));
    expect(err.code).toBe('ERR_PLUGIN_DEPENDENCY');
    expect(err.message).toContain('app');
    expect(err.message).toContain('base');
    expect(app.calls).toEqual([]);
    expect(b.broker.control.plugin('app')?.state).not.toBe('started');
  });

  it('starts once the dependency is started', async () => {
    const base = probe('base');
    const app = probe('app', { dependsOn: ['base'] });
    const b = await broker({ plugins: [base.def, app.def], startups: [] });
    await b.broker.control.startPlugin('base');
    await b.broker.control.startPlugin('app');
    expect(b.broker.control.plugin('app')?.state).toBe('started');
  });

  it('a dependency listed after its dependant in default_startups stops start-up with ERR_PLUGIN_DEPENDENCY', async () => {
    const base = probe('base');
    const app = probe('app', { dependsOn: ['base'] });
    const err = await rejection(broker({ plugins: [base.def, app.def], startups: ['app', 'base'] }));
    expect(err.code).toBe('ERR_PLUGIN_DEPENDENCY');
    expect(err.message).toContain('base');
  });

  it('stopping a plugin that a started plugin depends on fails with ERR_PLUGIN_DEPENDENCY', async () => {
    const base = probe('base');
    const app = probe('app', { dependsOn: ['base'] });
    const b = await broker({ plugins: [base.def, app.def], startups: ['base', 'app'] });
    const err = await rejection(b.broker.control.stopPlugin('base'));
    expect(err.code).toBe('ERR_PLUGIN_DEPENDENCY');
    expect(err.message).toContain('app');
    expect(base.calls).not.toContain('stop');
    expect(b.broker.control.plugin('base')?.state).toBe('started');
  });

  it('the dependency can be stopped once its dependant is stopped', async () => {
    const base = probe('base');
    const app = probe('app', { dependsOn: ['base'] });
    const b = await broker({ plugins: [base.def, app.def], startups: ['base', 'app'] });
    expect(await b.broker.control.stopPlugin('app')).toBe(true);
    expect(await b.broker.control.stopPlugin('base')).toBe(true);
    expect(b.broker.control.plugin('base')?.state).toBe('stopped');
  });
});

describe('plugin API version and definePlugin misuse', () => {
  it('a plugin that needs plugin API ^2.0.0 is refused with ERR_PLUGIN_API_VERSION', async () => {
    const future = definePlugin({ name: 'future-thing', apiVersion: '^2.0.0', create: () => ({}) });
    const err = await rejection(broker({ plugins: [future] }));
    expect(err.code).toBe('ERR_PLUGIN_API_VERSION');
    expect(err.message).toContain('future-thing');
    expect(err.message).toContain('^2.0.0');
  });

  it('a bad name throws ERR_PLUGIN_INVALID naming it', () => {
    const err = thrown(() => definePlugin({ name: 'Not A Name', apiVersion: '^1.0.0', create: () => ({}) }));
    expect(err.code).toBe('ERR_PLUGIN_INVALID');
    expect(err.message).toContain('Not A Name');
  });

  it('a missing create throws ERR_PLUGIN_INVALID naming the plugin', () => {
    const err = thrown(() => definePlugin({ name: 'no-factory', apiVersion: '^1.0.0' } as unknown as PluginDefinition));
    expect(err.code).toBe('ERR_PLUGIN_INVALID');
    expect(err.message).toContain('no-factory');
    expect(err.message).toContain('create');
  });

  it('a missing apiVersion throws ERR_PLUGIN_INVALID naming the plugin', () => {
    const err = thrown(() => definePlugin({ name: 'no-version', create: () => ({}) } as unknown as PluginDefinition));
    expect(err.code).toBe('ERR_PLUGIN_INVALID');
    expect(err.message).toContain('no-version');
    expect(err.message).toContain('apiVersion');
  });

  it('a non-string apiVersion throws ERR_PLUGIN_INVALID naming the plugin', () => {
    const err = thrown(() => definePlugin({ name: 'numeric-version', apiVersion: 1, create: () => ({}) } as unknown as PluginDefinition));
    expect(err.code).toBe('ERR_PLUGIN_INVALID');
    expect(err.message).toContain('numeric-version');
  });

  it('an apiVersion that is not a semver range is refused with ERR_PLUGIN_INVALID naming the plugin', async () => {
    // misuse may be caught by definePlugin or when the broker loads the plugin; either way the code is the same
    const err = await rejection(
      (async () => {
        const def = definePlugin({ name: 'bad-range', apiVersion: 'the latest one', create: () => ({}) });
        await broker({ plugins: [def] });
      })(),
    );
    expect(err.code).toBe('ERR_PLUGIN_INVALID');
    expect(err.message).toContain('bad-range');
  });
});

describe('plugin config reload', () => {
  const schema = {
    level: { doc: 'a number', format: 'nat', default: 1 },
    token: { doc: 'a secret', format: String, default: '', sensitive: true },
  };

  function setupDir(text: string): { dir: string; write: (t: string) => void } {
    const dir = tempDir('rmqtt-reload-');
    const file = join(dir, 'rmqtt-tunable.toml');
    writeFileSync(file, text);
    return { dir, write: (t) => writeFileSync(file, t) };
  }

  it('reads the plugin file from plugins.dir and shows the config with secrets masked', async () => {
    const { dir } = setupDir('level = 5\ntoken = "hunter2"\n');
    const p = probe('tunable', { configSchema: schema });
    const b = await broker({ plugins: [p.def], pluginsDir: dir });
    expect(p.ctx!.config).toEqual({ level: 5, token: 'hunter2' });
    expect(b.broker.control.pluginConfig('tunable')).toEqual({ level: 5, token: '******' });
  });

  it('reload re-reads the file and hands the new config to the plugin', async () => {
    const { dir, write } = setupDir('level = 5\ntoken = "hunter2"\n');
    const seen: Record<string, unknown>[] = [];
    const p = probe('tunable', { configSchema: schema, reload: (c) => void seen.push(c) });
    const b = await broker({ plugins: [p.def], pluginsDir: dir });
    write('level = 7\ntoken = "swordfish"\n');
    await b.broker.control.reloadPlugin('tunable');
    expect(seen).toEqual([{ level: 7, token: 'swordfish' }]);
    expect(p.ctx!.config).toEqual({ level: 7, token: 'swordfish' });
    expect(b.broker.control.pluginConfig('tunable')).toEqual({ level: 7, token: '******' });
  });

  it('a bad value in the file rejects the reload with ERR_CONFIG naming the file and key; the old config stays', async () => {
    const { dir, write } = setupDir('level = 5\ntoken = "hunter2"\n');
    const p = probe('tunable', { configSchema: schema });
    const b = await broker({ plugins: [p.def], pluginsDir: dir });
    write('level = "lots"\ntoken = "swordfish"\n');
    const err = await rejection(b.broker.control.reloadPlugin('tunable'));
    expect(err.code).toBe('ERR_CONFIG');
    expect(err.message).toContain('rmqtt-tunable.toml');
    expect(err.message).toContain('level');
    expect(p.calls).not.toContain('reload');
    expect(p.ctx!.config).toEqual({ level: 5, token: 'hunter2' });
    expect(b.broker.control.pluginConfig('tunable')).toEqual({ level: 5, token: '******' });
  });

  it('an unknown key in the file rejects the reload with ERR_CONFIG naming it', async () => {
    const { dir, write } = setupDir('level = 5\n');
    const p = probe('tunable', { configSchema: schema });
    const b = await broker({ plugins: [p.def], pluginsDir: dir });
    write('level = 6\nlevle = 6\n');
    const err = await rejection(b.broker.control.reloadPlugin('tunable'));
    expect(err.code).toBe('ERR_CONFIG');
    expect(err.message).toContain('levle');
    expect(b.broker.control.pluginConfig('tunable')['level']).toBe(5);
    expect(p.ctx!.config['level']).toBe(5);
  });

  it('a config the plugin rejects in reload() leaves the old one in force', async () => {
    const { dir, write } = setupDir('level = 5\n');
    const p = probe('tunable', {
      configSchema: schema,
      reload: (c) => {
        if (c['level'] === 13) throw new Error('unlucky');
      },
    });
    const b = await broker({ plugins: [p.def], pluginsDir: dir });
    write('level = 13\n');
    const err = await rejection(b.broker.control.reloadPlugin('tunable'));
    expect(err.message).toContain('unlucky');
    expect(p.ctx!.config['level']).toBe(5);
    expect(b.broker.control.pluginConfig('tunable')['level']).toBe(5);
  });
});

describe('extension points', () => {
  const provider = (name: string, store: RetainStore = new MapRetainStore()): Probe =>
    probe(name, { provide: (ctx) => ctx.extensions.provide('retainStore', store) });

  it('[MQTT-3.2.2-13] without a RetainStore provider CONNACK says Retain Available 0', async () => {
    const p = provider('store');
    const b = await broker({ plugins: [p.def], startups: [] });
    const { connack } = await raw5(b.port());
    expect(connack.reasonCode).toBe(0);
    expect(connack.properties.retainAvailable).toBe(0);
  });

  it('a started plugin providing retainStore makes CONNACK leave Retain Available out (available)', async () => {
    const p = provider('store');
    const b = await broker({ plugins: [p.def] });
    const { connack } = await raw5(b.port());
    expect(connack.reasonCode).toBe(0);
    expect(connack.properties.retainAvailable).toBeUndefined();
  });

  it('the provided store receives retained publishes', async () => {
    const store = new MapRetainStore();
    const p = provider('store', store);
    const b = await broker({ plugins: [p.def] });
    const pub = await client(b.url(), { protocolVersion: 5 });
    await pub.publishAsync('ext/r', 'kept', { qos: 1, retain: true });
    expect(store.get('ext/r')?.payload.toString()).toBe('kept');
    expect((await b.broker.control.retained('ext/r')).map((m) => m.payload.toString())).toEqual(['kept']);
  });

  it('stopping the provider restores the kernel default (no store: Retain Available 0)', async () => {
    const store = new MapRetainStore();
    const p = provider('store', store);
    const b = await broker({ plugins: [p.def] });
    const pub = await client(b.url(), { protocolVersion: 5 });
    await pub.publishAsync('ext/r', 'kept', { qos: 1, retain: true });
    expect(await b.broker.control.stopPlugin('store')).toBe(true);
    expect(b.broker.ext.retainStore).toBeNull();
    expect(await b.broker.control.retained('ext/r')).toEqual([]);
    const { connack } = await raw5(b.port());
    expect(connack.properties.retainAvailable).toBe(0);
  });

  it('starting the provider again puts its store back', async () => {
    const store = new MapRetainStore();
    const p = provider('store', store);
    const b = await broker({ plugins: [p.def] });
    await b.broker.control.stopPlugin('store');
    await b.broker.control.startPlugin('store');
    expect(b.broker.ext.retainStore).toBe(store);
    const { connack } = await raw5(b.port());
    expect(connack.properties.retainAvailable).toBeUndefined();
  });

  it('a second provider of the same extension point is refused with ERR_EXTENSION_TAKEN; the first stays', async () => {
    const first = new MapRetainStore();
    const a = provider('store-a', first);
    const c = provider('store-b');
    const b = await broker({ plugins: [a.def, c.def], startups: ['store-a'] });
    const err = await rejection(b.broker.control.startPlugin('store-b'));
    expect(err.code).toBe('ERR_EXTENSION_TAKEN');
    expect(b.broker.ext.retainStore).toBe(first);
    expect(b.broker.control.plugin('store-b')?.state).not.toBe('started');
  });
});

describe('start/stop under traffic', () => {
  it('starting and stopping a plugin while clients exchange QoS 1 messages loses nothing and drops no connection', async () => {
    let seen = 0;
    const busy = definePlugin({
      name: 'busy',
      apiVersion: '^1.0.0',
      create(ctx) {
        return {
          init() {
            ctx.hooks.on('message.publish', (m) => {
              seen++;
              return m;
            });
            ctx.hooks.on('message.delivered', () => undefined);
            ctx.extensions.provide('retainStore', new MapRetainStore());
          },
        };
      },
    });
    const b = await broker({ plugins: [busy] });
    const sub = await client(b.url(), { protocolVersion: 5, clientId: 'traffic-sub' });
    const pub = await client(b.url(), { protocolVersion: 5, clientId: 'traffic-pub' });
    const events: string[] = [];
    for (const [name, c] of [['sub', sub], ['pub', pub]] as const) {
      for (const ev of ['close', 'offline', 'reconnect', 'disconnect', 'error']) c.on(ev as 'close', () => events.push(`${name}:${ev}`));
    }
    const rec = recorder(sub);
    await sub.subscribeAsync('traffic/#', { qos: 1 });
    const connectedBefore = b.broker.metrics.get('client.connected');

    const N = 300;
    let publishing = true;
    const publisher = (async () => {
      // one QoS 1 publish in flight at a time: mqtt.js ignores the broker's Receive Maximum
      for (let i = 0; i < N; i++) await pub.publishAsync(`traffic/${i % 3}`, String(i), { qos: 1 });
      publishing = false;
    })();
    let cycles = 0;
    const toggler = (async () => {
      while (publishing || cycles < 3) {
        expect(await b.broker.control.stopPlugin('busy')).toBe(true);
        await sleep(2);
        await b.broker.control.startPlugin('busy');
        await sleep(2);
        cycles++;
      }
    })();
    await Promise.all([publisher, toggler]);
    const got = await rec.waitFor(N, 10_000);

    expect(got.map((m) => Number(m.payload.toString()))).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(got.every((m) => m.packet.qos === 1)).toBe(true);
    await sleep(100);
    expect(rec.messages).toHaveLength(N);
    expect(events).toEqual([]);
    expect(sub.connected && pub.connected).toBe(true);
    expect(b.broker.metrics.get('client.connected')).toBe(connectedBefore);
    expect(b.broker.metrics.get('messages.dropped')).toBe(0);
    expect(cycles).toBeGreaterThanOrEqual(3);
    // the hook ran while started and not while stopped: some messages, not necessarily all, went through it
    expect(seen).toBeGreaterThan(0);
    expect(b.broker.control.plugin('busy')?.state).toBe('started');
  });
});

// ---------- name resolution ----------

/**
 * `@rmqtt-ts/plugin-api` as a user's install has it: the workspace package's built `dist`, linked.
 * Not a link to the whole package: vitest runs with `--conditions source`, under which Node's own
 * import of a fixture would resolve the package to its TypeScript sources and fail.
 */
function installPluginApi(dir: string): void {
  const pkg = JSON.parse(readFileSync(join(PLUGIN_API, 'package.json'), 'utf8')) as { version: string };
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: '@rmqtt-ts/plugin-api', version: pkg.version, type: 'module', exports: { '.': { import: './dist/index.js', default: './dist/index.js' } } }),
  );
  symlinkSync(join(PLUGIN_API, 'dist'), join(dir, 'dist'), 'dir');
}

describe('plugin name resolution', () => {
  let root: string;

  beforeAll(() => {
    root = tempDir('rmqtt-resolve-');
    // plain ESM files outside any package (the path plugins) need a module-type package.json above them
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'resolve-fixture-root', private: true, type: 'module' }));
    mkdirSync(join(root, 'node_modules/@rmqtt-ts'), { recursive: true });
    mkdirSync(join(root, 'node_modules/@acme'), { recursive: true });
    installPluginApi(join(root, 'node_modules/@rmqtt-ts/plugin-api'));
    cpSync(join(FIXTURES, 'plugin-foo'), join(root, 'node_modules/@rmqtt-ts/plugin-foo'), { recursive: true });
    cpSync(join(FIXTURES, 'future-api'), join(root, 'node_modules/@rmqtt-ts/plugin-future'), { recursive: true });
    cpSync(join(FIXTURES, 'acme-rmqtt-audit'), join(root, 'node_modules/acme-rmqtt-audit'), { recursive: true });
    cpSync(join(FIXTURES, 'acme-scoped'), join(root, 'node_modules/@acme/rmqtt-metrics'), { recursive: true });
    mkdirSync(join(root, 'local'));
    cpSync(join(FIXTURES, 'path-file-plugin.js'), join(root, 'local/path-file-plugin.js'));
    cpSync(join(FIXTURES, 'path-dir-plugin'), join(root, 'local/path-dir-plugin'), { recursive: true });
  });

  it.each(['rmqtt-foo', 'foo', '@rmqtt-ts/plugin-foo'])('resolves %s to the package @rmqtt-ts/plugin-foo in <cwd>/node_modules', async (spec) => {
    const b = await broker({ cwd: root, startups: [spec] });
    expect(b.broker.control.plugin('foo')).toMatchObject({
      name: 'foo',
      packageName: '@rmqtt-ts/plugin-foo',
      version: '1.2.3',
      description: 'fixture: an rmqtt-ts plugin package',
      state: 'started',
      attrs: { fixture: 'foo' },
    });
  });

  it('treats rmqtt-foo, foo and @rmqtt-ts/plugin-foo as one plugin', async () => {
    const b = await broker({ cwd: root, startups: ['rmqtt-foo', 'foo', '@rmqtt-ts/plugin-foo'] });
    expect(b.broker.control.plugins().map((p) => p.name)).toEqual(['foo']);
    for (const name of ['rmqtt-foo', 'foo', '@rmqtt-ts/plugin-foo']) expect(b.broker.control.plugin(name)?.name).toBe('foo');
  });

  it('runs a resolved package plugin’s hooks', async () => {
    const b = await broker({ cwd: root, startups: ['rmqtt-foo'] });
    const sub = await client(b.url());
    const pub = await client(b.url());
    const rec = recorder(sub);
    await sub.subscribeAsync('foo/#', { qos: 1 });
    expect(await roundTrip(pub, rec, 'foo/x', 'hi')).toBe('hi+foo');
  });

  it('resolves a third-party package name', async () => {
    const b = await broker({ cwd: root, startups: ['acme-rmqtt-audit'] });
    expect(b.broker.control.plugin('acme-audit')).toMatchObject({ packageName: 'acme-rmqtt-audit', version: '0.4.0', state: 'started', attrs: { fixture: 'acme-audit' } });
  });

  it('resolves a scoped third-party package name', async () => {
    const b = await broker({ cwd: root, startups: ['@acme/rmqtt-metrics'] });
    expect(b.broker.control.plugin('acme-metrics')).toMatchObject({ packageName: '@acme/rmqtt-metrics', version: '2.0.1', state: 'started' });
  });

  it('resolves a relative file path against cwd', async () => {
    const b = await broker({ cwd: root, startups: ['./local/path-file-plugin.js'] });
    expect(b.broker.control.plugin('path-file')).toMatchObject({ state: 'started', attrs: { fixture: 'path-file' } });
  });

  it('resolves an absolute file path', async () => {
    const b = await broker({ cwd: root, startups: [join(root, 'local/path-file-plugin.js')] });
    expect(b.broker.control.plugin('path-file')?.state).toBe('started');
  });

  it('resolves a relative directory path through its package.json', async () => {
    const b = await broker({ cwd: root, startups: ['./local/path-dir-plugin'] });
    expect(b.broker.control.plugin('path-dir')).toMatchObject({ packageName: 'path-dir-plugin', version: '0.0.7', state: 'started', attrs: { fixture: 'path-dir' } });
  });

  it('resolves an absolute directory path', async () => {
    const b = await broker({ cwd: root, startups: [join(root, 'local/path-dir-plugin')] });
    expect(b.broker.control.plugin('path-dir')?.state).toBe('started');
  });

  it('loads a package plugin at run time through startPlugin', async () => {
    const b = await broker({ cwd: root, startups: [] });
    expect(b.broker.control.plugin('foo')).toBeUndefined();
    await b.broker.control.startPlugin('rmqtt-foo');
    expect(b.broker.control.plugin('foo')?.state).toBe('started');
  });

  it('refuses an installed package that needs plugin API ^2.0.0 with ERR_PLUGIN_API_VERSION', async () => {
    const err = await rejection(broker({ cwd: root, startups: ['rmqtt-future'] }));
    expect(err.code).toBe('ERR_PLUGIN_API_VERSION');
    expect(err.message).toContain('future');
  });

  it.each(['no-such-plugin-zz', 'rmqtt-no-such-plugin-zz', '@acme/no-such-plugin', './local/missing-plugin.js'])(
    'an unknown non-RMQTT name (%s) stops start-up with ERR_PLUGIN_NOT_FOUND',
    async (spec) => {
      const err = await rejection(broker({ cwd: root, startups: ['rmqtt-foo', spec] }));
      expect(err.code).toBe('ERR_PLUGIN_NOT_FOUND');
      expect(err.message).toContain(spec);
    },
  );

  it('an RMQTT plugin rmqtt-ts does not ship yet is skipped with a warning naming it, and start-up goes on', async () => {
    const { logger, lines } = captureLogger();
    // an RMQTT plugin that rmqtt-ts has no package for
    const b = await broker({ cwd: root, startups: ['rmqtt-bridge-egress-pulsar', 'rmqtt-foo'], logger });
    expect(b.broker.control.plugin('foo')?.state).toBe('started');
    expect(b.broker.control.plugin('bridge-egress-pulsar')).toBeUndefined();
    const warnings = lines.filter((l) => l['level'] === 40 && JSON.stringify(l).includes('rmqtt-bridge-egress-pulsar'));
    expect(warnings).toHaveLength(1);
  });

  it('starts plugins exactly in default_startups order and logs the list', async () => {
    const { logger, lines } = captureLogger();
    const defs = ['alpha', 'bravo', 'charlie', 'delta'].map((n) => probe(n).def);
    const startups = ['charlie', 'rmqtt-foo', 'alpha', './local/path-file-plugin.js', 'delta', 'bravo'];
    await broker({ cwd: root, plugins: defs, startups, logger });
    const started = lines.filter((l) => l['msg'] === 'plugin started').map((l) => l['plugin']);
    expect(started).toEqual(['charlie', 'foo', 'alpha', 'path-file', 'delta', 'bravo']);
    const listed = lines.find((l) => Array.isArray(l['plugins']));
    expect(listed?.['plugins']).toEqual(startups);
  });

  it('does not start a given plugin that default_startups leaves out', async () => {
    const a = probe('alpha');
    const z = probe('zulu');
    const b = await broker({ cwd: root, plugins: [a.def, z.def], startups: ['zulu'] });
    expect(b.broker.control.plugin('alpha')?.state).toBe('registered');
    expect(a.calls).toEqual([]);
    expect(b.broker.control.plugin('zulu')?.state).toBe('started');
  });
});
