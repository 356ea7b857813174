/**
 * The plugin manager: resolve, check the API version and dependencies, and drive each plugin through
 * init → start ⇄ stop → dispose, with reload. A plugin's hooks and extensions are registered at init
 * and switched on and off by start and stop, so start/stop at run time never touches a connection.
 */
import semver from 'semver';
import {
  PLUGIN_API_VERSION,
  RmqttError,
  type BrokerServices,
  type ExtensionName,
  type ExtensionTypes,
  type Logger,
  type PluginContext,
  type AnyPluginDefinition,
  type PluginDefinition,
  type PluginInstance,
  type PluginSummary,
} from '@rmqtt-ts/plugin-api';
import { loadPluginConfig, maskSecrets } from '../config/index.js';
import type { ExtensionSlots } from '../extensions/slots.js';
import type { HookRegistry } from '../hooks/registry.js';
import { PluginNotFound, loadPlugin, parsePluginName, type ResolvedPlugin } from './resolve.js';

type State = PluginSummary['state'];

class PluginRecord {
  state: State = 'registered';
  instance: PluginInstance | undefined;
  config: Record<string, unknown> = {};
  configFile = '';
  readonly provided = new Map<ExtensionName, unknown>();
  startedSeq = 0;
  constructor(readonly resolved: ResolvedPlugin) {}
  get name(): string {
    return this.resolved.definition.name;
  }
  get definition(): PluginDefinition {
    return this.resolved.definition;
  }
}

export interface PluginManagerOptions {
  hooks: HookRegistry;
  ext: ExtensionSlots;
  logger: Logger;
  services: BrokerServices;
  /** `plugins.dir`: where `rmqtt-<name>.toml` files live. */
  configDir: string;
  cwd: string;
  /** Where packages are looked up after `<cwd>/node_modules` (the broker's own locations). */
  searchPaths: readonly string[];
  env: NodeJS.ProcessEnv;
}

export class PluginManager {
  readonly #records = new Map<string, PluginRecord>();
  readonly #o: PluginManagerOptions;
  #seq = 0;
  /** After boot, immutable plugins cannot change state. */
  running = false;

  constructor(options: PluginManagerOptions) {
    this.#o = options;
  }

  /** Register a plugin definition given directly (built in, or by the test kit). */
  register(definition: AnyPluginDefinition, meta?: Partial<Omit<ResolvedPlugin, 'definition'>>): void {
    this.#add({
      definition,
      packageName: meta?.packageName ?? `@rmqtt-ts/plugin-${definition.name}`,
      version: meta?.version ?? '0.0.0',
      description: meta?.description ?? definition.description ?? '',
      url: meta?.url ?? '',
    });
  }

  #add(resolved: ResolvedPlugin): PluginRecord {
    const def = resolved.definition;
    if (!semver.validRange(def.apiVersion)) {
      throw new RmqttError('ERR_PLUGIN_INVALID', `plugin "${def.name}": apiVersion "${def.apiVersion}" is not a semver range`);
    }
    if (!semver.satisfies(PLUGIN_API_VERSION, def.apiVersion)) {
      throw new RmqttError('ERR_PLUGIN_API_VERSION', `plugin "${def.name}" needs plugin API ${def.apiVersion}; this broker provides ${PLUGIN_API_VERSION}`);
    }
    const existing = this.#records.get(def.name);
    if (existing !== undefined) return existing;
    const r = new PluginRecord(resolved);
    this.#records.set(def.name, r);
    return r;
  }

  /** Find a plugin by any of its names, loading its package if needed. */
  async resolve(spec: string): Promise<PluginRecord> {
    const ref = parsePluginName(spec, this.#o.cwd);
    const known = this.#records.get(ref.short ?? spec) ?? [...this.#records.values()].find((r) => r.resolved.packageName === spec);
    if (known !== undefined) return known;
    const loaded = await loadPlugin(ref, [this.#o.cwd, ...this.#o.searchPaths]);
    return this.#add(loaded);
  }

  /**
   * Start the plugins listed in plugins.default_startups, in that order. An RMQTT plugin rmqtt-ts does
   * not ship is skipped with a warning naming it; any other unknown name stops start-up.
   */
  async startDefaults(names: readonly string[]): Promise<void> {
    this.#o.logger.info({ plugins: names }, 'plugins.default_startups');
    for (const spec of names) {
      let rec: PluginRecord;
      try {
        rec = await this.resolve(spec);
      } catch (err) {
        if (err instanceof PluginNotFound && err.known) {
          this.#o.logger.warn({ plugin: spec }, `plugin "${spec}" is an RMQTT plugin that rmqtt-ts does not provide yet; skipped`);
          continue;
        }
        throw err;
      }
      await this.#start(rec, false);
    }
  }

  get(name: string): PluginRecord | undefined {
    const ref = parsePluginName(name, this.#o.cwd);
    return this.#records.get(ref.short ?? name) ?? [...this.#records.values()].find((r) => r.resolved.packageName === name);
  }

  #require(name: string): PluginRecord {
    const r = this.get(name);
    if (r === undefined) throw new RmqttError('ERR_PLUGIN_NOT_FOUND', `plugin "${name}" not found`);
    return r;
  }

  summaries(): PluginSummary[] {
    return [...this.#records.values()].map((r) => this.#summary(r));
  }

  summary(name: string): PluginSummary | undefined {
    const r = this.get(name);
    return r === undefined ? undefined : this.#summary(r);
  }

  #summary(r: PluginRecord): PluginSummary {
    let attrs: Record<string, unknown> = {};
    try {
      attrs = r.instance?.attrs?.() ?? {};
    } catch (err) {
      this.#o.logger.warn({ err, plugin: r.name }, 'plugin attrs() failed');
    }
    return {
      name: r.name,
      packageName: r.resolved.packageName,
      version: r.resolved.version,
      description: r.resolved.description,
      state: r.state,
      inited: r.instance !== undefined,
      active: r.state === 'started',
      immutable: r.definition.immutable === true,
      attrs,
    };
  }

  /** Start at run time (the HTTP API's load): loads the package if it is not known yet. */
  async start(name: string): Promise<void> {
    const rec = await this.resolve(name);
    await this.#start(rec, true);
  }

  async #start(r: PluginRecord, runtime: boolean): Promise<void> {
    if (r.state === 'started') return;
    if (runtime && this.running && r.definition.immutable) {
      throw new RmqttError('ERR_PLUGIN_IMMUTABLE', `plugin "${r.name}" is immutable: it starts only at boot`);
    }
    for (const dep of r.definition.dependsOn ?? []) {
      const d = this.get(dep);
      if (d === undefined || d.state !== 'started') {
        throw new RmqttError('ERR_PLUGIN_DEPENDENCY', `plugin "${r.name}" needs plugin "${dep}" started first`);
      }
    }
    try {
      if (r.instance === undefined) {
        r.config = this.#loadConfig(r);
        r.instance = await this.#create(r);
        r.state = 'inited';
        await r.instance.init?.();
      }
      await r.instance.start?.();
      for (const [name, impl] of r.provided) this.#o.ext.install(r.name, name, impl as ExtensionTypes[typeof name]);
      this.#o.hooks.setEnabled(r.name, true);
      r.state = 'started';
      r.startedSeq = ++this.#seq;
      this.#o.logger.info({ plugin: r.name, version: r.resolved.version }, 'plugin started');
    } catch (err) {
      this.#o.hooks.setEnabled(r.name, false);
      this.#o.ext.uninstall(r.name);
      if (r.state === 'registered' || r.state === 'inited') r.state = 'failed';
      if (err instanceof RmqttError) throw err;
      throw new RmqttError('ERR_PLUGIN_FAILED', `plugin "${r.name}" failed to start: ${(err as Error).message}`, { cause: err });
    }
  }

  #loadConfig(r: PluginRecord): Record<string, unknown> {
    const schema = r.definition.configSchema;
    const loaded = loadPluginConfig({ name: r.name, schema: schema ?? {}, dir: this.#o.configDir, env: this.#o.env, cwd: this.#o.cwd });
    r.configFile = loaded.file;
    for (const w of loaded.warnings) this.#o.logger.warn({ plugin: r.name }, w);
    if (!loaded.found) this.#o.logger.info({ plugin: r.name, file: loaded.file }, 'no plugin config file; using defaults');
    return loaded.config;
  }

  async #create(r: PluginRecord): Promise<PluginInstance> {
    const o = this.#o;
    const logger = o.logger.child({ plugin: r.name });
    const hooks = o.hooks.registrar(r.name);
    const ctx: PluginContext = {
      name: r.name,
      get config() {
        return r.config;
      },
      logger,
      hooks,
      extensions: {
        provide: <N extends ExtensionName>(name: N, implementation: ExtensionTypes[N]): void => {
          r.provided.set(name, implementation);
          if (r.state === 'started') o.ext.install(r.name, name, implementation);
        },
      },
      broker: o.services,
    };
    const instance = await r.definition.create(ctx);
    if (instance === null || typeof instance !== 'object') {
      throw new RmqttError('ERR_PLUGIN_INVALID', `plugin "${r.name}": create() must return an object`);
    }
    return instance;
  }

  /** Stop at run time (the HTTP API's unload). Resolves false when the plugin refused. */
  async stop(name: string, shutdown = false): Promise<boolean> {
    const r = this.#require(name);
    if (r.state !== 'started') throw new RmqttError('ERR_PLUGIN_STATE', `plugin "${r.name}" is not started`);
    if (!shutdown) {
      if (r.definition.immutable) throw new RmqttError('ERR_PLUGIN_IMMUTABLE', `plugin "${r.name}" is immutable`);
      const dependent = [...this.#records.values()].find((d) => d.state === 'started' && (d.definition.dependsOn ?? []).includes(r.name));
      if (dependent !== undefined) {
        throw new RmqttError('ERR_PLUGIN_DEPENDENCY', `plugin "${r.name}" is needed by "${dependent.name}"`);
      }
    }
    this.#o.hooks.setEnabled(r.name, false);
    let result: boolean | void;
    try {
      result = await r.instance?.stop?.();
    } catch (err) {
      this.#o.hooks.setEnabled(r.name, true);
      throw new RmqttError('ERR_PLUGIN_FAILED', `plugin "${r.name}" failed to stop: ${(err as Error).message}`, { cause: err });
    }
    if (result === false && !shutdown) {
      this.#o.hooks.setEnabled(r.name, true);
      return false;
    }
    this.#o.ext.uninstall(r.name);
    r.state = 'stopped';
    this.#o.logger.info({ plugin: r.name }, 'plugin stopped');
    return true;
  }

  /** Re-read the plugin's config file, validate it, apply it; on any error the running config stays. */
  async reload(name: string): Promise<void> {
    const r = this.#require(name);
    if (r.definition.immutable && this.running) throw new RmqttError('ERR_PLUGIN_IMMUTABLE', `plugin "${r.name}" is immutable`);
    if (r.instance === undefined) throw new RmqttError('ERR_PLUGIN_STATE', `plugin "${r.name}" is not initialised`);
    const next = this.#loadConfig(r);
    try {
      await r.instance.reload?.(next);
    } catch (err) {
      throw new RmqttError('ERR_PLUGIN_FAILED', `plugin "${r.name}" rejected its new config: ${(err as Error).message}`, { cause: err });
    }
    r.config = next;
    this.#o.logger.info({ plugin: r.name }, 'plugin config reloaded');
  }

  /** The config in force, secrets masked. */
  config(name: string): Record<string, unknown> {
    const r = this.#require(name);
    return maskSecrets(r.config, r.definition.configSchema ?? {});
  }

  /** Stop (in reverse start order) and dispose everything. */
  async shutdown(): Promise<void> {
    const started = [...this.#records.values()].filter((r) => r.state === 'started').sort((a, b) => b.startedSeq - a.startedSeq);
    for (const r of started) {
      try {
        await this.stop(r.name, true);
      } catch (err) {
        this.#o.logger.error({ err, plugin: r.name }, 'plugin stop failed');
      }
    }
    for (const r of [...this.#records.values()].reverse()) {
      if (r.instance === undefined) continue;
      try {
        await r.instance.dispose?.();
      } catch (err) {
        this.#o.logger.error({ err, plugin: r.name }, 'plugin dispose failed');
      }
      this.#o.hooks.removeOwner(r.name);
      r.instance = undefined;
      r.state = 'disposed';
    }
  }
}

