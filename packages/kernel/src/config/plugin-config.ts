/**
 * A plugin's config: `{plugins.dir}/rmqtt-{name}.toml` (RMQTT's file names) overlaid by
 * RMQTT_PLUGIN_{NAME}__KEY__SUB variables, validated strictly against the plugin's convict schema.
 * Pure and repeatable, so a reload can call it again.
 */
import { statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { ConfigAssembly, isSchemaLeaf } from './engine.js';
import { envEntries, envSource } from './env.js';
import { registerFormats } from './formats.js';
import { readTomlFile } from './toml.js';

export interface PluginConfigOptions {
  /** "retainer" or "rmqtt-retainer": either reads rmqtt-retainer.toml. */
  name: string;
  /** A convict schema; may use the formats of formats.ts. */
  schema: Record<string, unknown>;
  /** plugins.dir, relative to cwd. */
  dir: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface PluginConfigResult {
  /** convict getProperties(): durations in ms, sizes in bytes. */
  config: Record<string, unknown>;
  /** Absolute path of the file looked for. */
  file: string;
  found: boolean;
  warnings: string[];
}

/** "rmqtt-retainer" / "retainer" → "retainer". */
function shortName(name: string): string {
  return name.startsWith('rmqtt-') ? name.slice('rmqtt-'.length) : name;
}

/** Variable prefixes for a plugin: ours and RMQTT's (which keeps the rmqtt- of the plugin name). */
export function pluginEnvPrefixes(name: string): string[] {
  const upper = shortName(name).toUpperCase().replaceAll('-', '_');
  return [`RMQTT_PLUGIN_${upper}__`, `RMQTT_PLUGIN_RMQTT_${upper}__`];
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Dotted keys of leaves marked `notImplemented: true` in a plugin schema. */
function notImplementedKeys(schema: Record<string, unknown>, prefix = ''): string[] {
  const out: string[] = [];
  for (const [name, node] of Object.entries(schema)) {
    const key = prefix === '' ? name : `${prefix}.${name}`;
    if (!isSchemaLeaf(node)) out.push(...notImplementedKeys(node as Record<string, unknown>, key));
    else if (typeof node === 'object' && node !== null && (node as { notImplemented?: unknown }).notImplemented === true) out.push(key);
  }
  return out;
}

export function loadPluginConfig(options: PluginConfigOptions): PluginConfigResult {
  registerFormats();
  const cwd = options.cwd ?? process.cwd();
  const fileName = `rmqtt-${shortName(options.name)}.toml`;
  const label = join(options.dir, fileName);
  const file = isAbsolute(label) ? label : resolve(cwd, label);
  const found = isFile(file);

  const assembly = new ConfigAssembly(options.schema);
  if (found) assembly.apply([], readTomlFile(file, label), label);
  // RMQTT's longer prefix is the more specific one: match it first so it is not read as a key "rmqtt_…".
  const [ours, rmqtts] = pluginEnvPrefixes(options.name) as [string, string];
  const env = options.env ?? process.env;
  const rmqttStyle = envEntries(env, rmqtts);
  const taken = new Set(rmqttStyle.map((e) => e.variable));
  const ourStyle = envEntries(env, ours).filter((e) => !taken.has(e.variable));
  for (const e of [...ourStyle, ...rmqttStyle]) assembly.apply(e.path, e.value, envSource(e.variable));

  assembly.validate();
  assembly.throwIfProblems();

  const unimplemented = new Set(notImplementedKeys(options.schema));
  const named = [...assembly.origins.keys()].filter((k) => unimplemented.has(k));
  const warnings = named.length === 0 ? [] : [`${label}: settings accepted but not implemented by rmqtt-ts (they have no effect): ${named.join(', ')}`];
  return { config: assembly.properties(), file, found, warnings };
}
