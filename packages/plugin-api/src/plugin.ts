/** The plugin contract: a package's default export is a plugin definition made with `definePlugin`. */
import type { ExtensionRegistrar } from './extensions.js';
import type { HookRegistrar, MaybePromise } from './hooks.js';
import type { BrokerServices, Logger } from './services.js';
import { RmqttError } from './errors.js';

/** The version of this API; a plugin's `apiVersion` range must accept it. */
export const PLUGIN_API_VERSION = '1.0.0';

/**
 * A convict schema (https://github.com/mozilla/node-convict). Besides convict's formats, the kernel
 * registers `duration` ("5m", "2500ms", number = seconds → milliseconds), `duration-s` (→ seconds),
 * `size` ("1MB", "512K", number = bytes), `rate` ("burst,period") and `addr` ("host:port").
 * Besides convict's `sensitive: true` (the whole value is masked when the config is shown), a leaf may
 * name `sensitiveKeys: ['password']`: those keys are masked wherever they occur inside its value.
 * `notImplemented: true` marks a key accepted for compatibility that does nothing (a start-up warning).
 */
export type ConfigSchema = Record<string, unknown>;

export interface PluginContext<C = Record<string, unknown>> {
  /** Short name, e.g. `retainer`. */
  readonly name: string;
  /** The validated config in force (replaced on reload). */
  readonly config: C;
  readonly logger: Logger;
  /** Register hook handlers at init; they run only while the plugin is started. */
  readonly hooks: HookRegistrar;
  /** Provide extension-point implementations at init; they are active only while the plugin is started. */
  readonly extensions: ExtensionRegistrar;
  readonly broker: BrokerServices;
}

export interface PluginInstance<C = Record<string, unknown>> {
  /** Register hooks and extensions; acquire nothing that needs undoing by stop. */
  init?(): MaybePromise<void>;
  /** Hooks and extensions are enabled right after this resolves. */
  start?(): MaybePromise<void>;
  /** Return false to refuse (the plugin stays started). Hooks are disabled before this is called. */
  stop?(): MaybePromise<boolean | void>;
  /** Apply a new validated config (the old one stays if this throws). */
  reload?(config: C): MaybePromise<void>;
  /** Runtime figures for the API. */
  attrs?(): Record<string, unknown>;
  dispose?(): MaybePromise<void>;
}

export interface PluginDefinition<C = Record<string, unknown>> {
  /** Short name (`retainer`); the package is `@rmqtt-ts/plugin-<name>`, RMQTT's name `rmqtt-<name>`. */
  readonly name: string;
  /** semver range of the plugin API this plugin works with, e.g. `^1.0.0`. */
  readonly apiVersion: string;
  readonly description?: string;
  /** Plugins that must be started before this one. */
  readonly dependsOn?: readonly string[];
  /** Immutable plugins cannot be started, stopped or reloaded at run time. */
  readonly immutable?: boolean;
  readonly configSchema?: ConfigSchema;
  create(ctx: PluginContext<C>): MaybePromise<PluginInstance<C>>;
}

/** A definition whatever its config type (for collections of plugins). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyPluginDefinition = PluginDefinition<any>;

const NAME_RE = /^[a-z0-9][a-z0-9-]*$/;

/** Declare a plugin. Misuse throws a coded error naming the plugin, when the package is loaded. */
export function definePlugin<C = Record<string, unknown>>(definition: PluginDefinition<C>): PluginDefinition<C> {
  const name = (definition as { name?: unknown }).name;
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new RmqttError('ERR_PLUGIN_INVALID', `plugin name must match ${NAME_RE}: got ${JSON.stringify(name)}`);
  }
  if (typeof definition.apiVersion !== 'string' || definition.apiVersion.length === 0) {
    throw new RmqttError('ERR_PLUGIN_INVALID', `plugin "${name}": apiVersion must be a semver range such as "^1.0.0"`);
  }
  if (typeof definition.create !== 'function') {
    throw new RmqttError('ERR_PLUGIN_INVALID', `plugin "${name}": create must be a function`);
  }
  if (definition.dependsOn !== undefined && !Array.isArray(definition.dependsOn)) {
    throw new RmqttError('ERR_PLUGIN_INVALID', `plugin "${name}": dependsOn must be an array of plugin names`);
  }
  if (definition.configSchema !== undefined && (typeof definition.configSchema !== 'object' || definition.configSchema === null)) {
    throw new RmqttError('ERR_PLUGIN_INVALID', `plugin "${name}": configSchema must be a convict schema object`);
  }
  return Object.freeze({ ...definition, [PLUGIN_MARK]: true });
}

/** Marks objects made by definePlugin, across copies of this package. */
export const PLUGIN_MARK = Symbol.for('@rmqtt-ts/plugin-definition');

export function isPluginDefinition(value: unknown): value is PluginDefinition {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[PLUGIN_MARK] === true;
}
