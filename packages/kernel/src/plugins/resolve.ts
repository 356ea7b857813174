/**
 * Plugin name resolution. `rmqtt-acl`, `acl` and `@rmqtt-ts/plugin-acl` are one plugin; any other
 * package name is a third-party package; a name starting with `.`, `/` or `file:` is a path. Packages are
 * looked up from `<cwd>/node_modules` first, then from the broker's own locations; the resolved file URL
 * is imported.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { RmqttError, isPluginDefinition, type PluginDefinition } from '@rmqtt-ts/plugin-api';

/** RMQTT's plugins, so that a name rmqtt-ts does not ship yet gets a warning rather than an error. */
export const RMQTT_PLUGIN_NAMES: ReadonlySet<string> = new Set([
  'acl',
  'auth-http',
  'auth-jwt',
  'auto-subscription',
  'bridge-egress-kafka',
  'bridge-egress-mqtt',
  'bridge-egress-nats',
  'bridge-egress-pulsar',
  'bridge-egress-reductstore',
  'bridge-ingress-kafka',
  'bridge-ingress-mqtt',
  'bridge-ingress-nats',
  'bridge-ingress-pulsar',
  'bridge-origin',
  'cluster-broadcast',
  'cluster-raft',
  'counter',
  'http-api',
  'message-storage',
  'p2p-messaging',
  'plugin-template',
  'retainer',
  'session-storage',
  'shared-subscription',
  'sys-topic',
  'topic-rewrite',
  'web-hook',
]);

export interface PluginRef {
  /** What the user wrote. */
  readonly spec: string;
  /** Short name for our own and RMQTT's plugins (`acl`); undefined for other packages and paths. */
  readonly short: string | undefined;
  /** Packages to look up, in order (empty for a path). */
  readonly packages: readonly string[];
  readonly path: string | undefined;
}

/** Classify a plugin name without touching the file system. */
export function parsePluginName(spec: string, cwd: string): PluginRef {
  if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('file:') || isAbsolute(spec)) {
    const path = spec.startsWith('file:') ? fileURLToPath(spec) : resolve(cwd, spec);
    return { spec, short: undefined, packages: [], path };
  }
  if (spec.startsWith('@rmqtt-ts/plugin-')) {
    return { spec, short: spec.slice('@rmqtt-ts/plugin-'.length), packages: [spec], path: undefined };
  }
  if (spec.startsWith('rmqtt-') && !spec.startsWith('rmqtt-ts')) {
    const short = spec.slice('rmqtt-'.length);
    return { spec, short, packages: [`@rmqtt-ts/plugin-${short}`], path: undefined };
  }
  if (/^[a-z0-9][a-z0-9-]*$/.test(spec)) {
    // a bare name: ours first (`acl`), then a third-party package of that name
    return { spec, short: spec, packages: [`@rmqtt-ts/plugin-${spec}`, spec], path: undefined };
  }
  return { spec, short: undefined, packages: [spec], path: undefined };
}

export interface ResolvedPlugin {
  readonly definition: PluginDefinition;
  readonly packageName: string;
  readonly version: string;
  readonly description: string;
  readonly url: string;
}

interface PackageJson {
  name?: string;
  version?: string;
  description?: string;
  main?: string;
  exports?: unknown;
}

function readJson(path: string): PackageJson {
  return JSON.parse(readFileSync(path, 'utf8')) as PackageJson;
}

/** The ESM entry of a package directory: exports["."] (import, then default), then main, then index.js. */
function packageEntry(dir: string, pkg: PackageJson): string {
  const ex = pkg.exports;
  let target: unknown = undefined;
  if (typeof ex === 'string') target = ex;
  else if (ex !== null && typeof ex === 'object') {
    const dot = (ex as Record<string, unknown>)['.'] ?? ex;
    if (typeof dot === 'string') target = dot;
    else if (dot !== null && typeof dot === 'object') {
      const d = dot as Record<string, unknown>;
      target = d['import'] ?? d['default'] ?? d['node'];
      if (target !== null && typeof target === 'object') {
        const t = target as Record<string, unknown>;
        target = t['default'] ?? t['import'];
      }
    }
  }
  if (typeof target !== 'string') target = pkg.main ?? 'index.js';
  return join(dir, target as string);
}

/** Find a package's directory from a list of base directories (their node_modules chains). */
function findPackageDir(packageName: string, bases: readonly string[]): string | undefined {
  for (const base of bases) {
    try {
      const req = createRequire(join(base, 'noop.js'));
      const pj = req.resolve(`${packageName}/package.json`);
      return dirname(pj);
    } catch {
      // not from here; a package without "./package.json" in its exports is found by walking up
      let dir = base;
      for (;;) {
        const candidate = join(dir, 'node_modules', packageName, 'package.json');
        if (existsSync(candidate)) return dirname(candidate);
        const up = dirname(dir);
        if (up === dir) break;
        dir = up;
      }
    }
  }
  return undefined;
}

export class PluginNotFound extends RmqttError {
  readonly known: boolean;
  constructor(ref: PluginRef, known: boolean) {
    super('ERR_PLUGIN_NOT_FOUND', `plugin "${ref.spec}" not found${ref.packages.length ? ` (looked for ${ref.packages.join(', ')})` : ''}`);
    this.known = known;
  }
}

/** Locate and import a plugin; its default export must be a definePlugin() result. */
export async function loadPlugin(ref: PluginRef, bases: readonly string[]): Promise<ResolvedPlugin> {
  let entry: string;
  let pkg: PackageJson = {};
  let dir: string | undefined;
  if (ref.path !== undefined) {
    if (!existsSync(ref.path)) throw new PluginNotFound(ref, false);
    if (statSync(ref.path).isDirectory()) {
      dir = ref.path;
      pkg = existsSync(join(dir, 'package.json')) ? readJson(join(dir, 'package.json')) : {};
      entry = packageEntry(dir, pkg);
    } else {
      entry = ref.path;
    }
  } else {
    for (const name of ref.packages) {
      dir = findPackageDir(name, bases);
      if (dir !== undefined) break;
    }
    if (dir === undefined) throw new PluginNotFound(ref, ref.short !== undefined && RMQTT_PLUGIN_NAMES.has(ref.short));
    pkg = readJson(join(dir, 'package.json'));
    entry = packageEntry(dir, pkg);
  }
  const url = pathToFileURL(entry).href;
  let mod: { default?: unknown };
  try {
    mod = (await import(url)) as { default?: unknown };
  } catch (err) {
    throw new RmqttError('ERR_PLUGIN_INVALID', `plugin "${ref.spec}": cannot import ${url}: ${(err as Error).message}`, { cause: err });
  }
  const def = mod.default;
  if (!isPluginDefinition(def)) {
    throw new RmqttError('ERR_PLUGIN_INVALID', `plugin "${ref.spec}": the default export of ${url} is not a definePlugin() result`);
  }
  return {
    definition: def,
    packageName: pkg.name ?? ref.packages[0] ?? def.name,
    version: pkg.version ?? '0.0.0',
    description: pkg.description ?? def.description ?? '',
    url,
  };
}
