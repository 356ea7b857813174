/**
 * loadBrokerConfig: schema defaults < file < environment < values < flags, validated strictly.
 * The file (and env and values) are read first because the schema has one subtree per listener name
 * they mention.
 */
import { isAbsolute, resolve } from 'node:path';
import { buildBrokerSchema, isUnimplementedKey, toBrokerConfig } from './broker-schema.js';
import type { ListenerRef } from './broker-schema.js';
import { ConfigAssembly } from './engine.js';
import type { Place } from './engine.js';
import { envEntries, envSource } from './env.js';
import { isPlainObject, registerFormats } from './formats.js';
import { LISTENER_TYPES, listenerKeyTypes, MAX_PACKET_SIZE } from './listener-schema.js';
import type { AnyListenerType } from './listener-schema.js';
import { readTomlFile } from './toml.js';
import type { ClusterFlags, LoadedConfig, LoadOptions } from './types.js';

const ENV_PREFIX = 'RMQTT_';
/** Plugin variables (RMQTT_PLUGIN_RETAINER__…) are read by loadPluginConfig. */
const PLUGIN_ENV_PREFIX = 'RMQTT_PLUGIN_';
const VALUES_SOURCE = 'LoadOptions.values';
const LISTENER_NAME = /^[A-Za-z0-9_-]+$/;

interface Entry {
  path: string[];
  value: unknown;
  source: string;
}

const isTable = isPlainObject;

function isListenerType(s: string | undefined): s is AnyListenerType {
  return (LISTENER_TYPES as readonly string[]).includes(s ?? '');
}

/** Listener names in order of first mention; bad names are reported once and their keys skipped. */
function collectListeners(files: readonly { tree: Record<string, unknown>; label: string }[], entries: readonly Entry[], problems: ConfigAssembly['problems']): { refs: ListenerRef[]; bad: Set<string> } {
  const refs: ListenerRef[] = [];
  const seen = new Set<string>();
  const bad = new Set<string>();
  function add(type: AnyListenerType, name: string, source: string): void {
    const id = `${type}.${name}`;
    if (seen.has(id) || bad.has(id)) return;
    if (!LISTENER_NAME.test(name)) {
      bad.add(id);
      problems.push({ source, key: `listener.${type}.${name}`, message: 'a listener name may hold only letters, digits, "_" and "-"' });
      return;
    }
    seen.add(id);
    refs.push({ type, name });
  }
  for (const file of files) {
    const tree = file.tree['listener'];
    if (!isTable(tree)) continue;
    for (const [type, names] of Object.entries(tree)) {
      if (isListenerType(type) && isTable(names)) for (const name of Object.keys(names)) add(type, name, file.label);
    }
  }
  for (const e of entries) {
    if (e.path[0] === 'listener' && isListenerType(e.path[1]) && e.path.length >= 3) add(e.path[1], e.path[2] as string, e.source);
    // A value given as a table at listener.<type> names listeners too.
    if (e.path[0] === 'listener' && isListenerType(e.path[1]) && e.path.length === 2 && isTable(e.value)) for (const name of Object.keys(e.value)) add(e.path[1], name, e.source);
  }
  // RMQTT's rule: no tcp or tls listener at all → a default tcp listener on 0.0.0.0:1883.
  if (!refs.some((r) => r.type === 'tcp' || r.type === 'tls')) refs.unshift({ type: 'tcp', name: 'external' });
  return { refs, bad };
}

function unknownKeyHint(path: readonly string[], place: Extract<Place, { kind: 'unknown' }>): string {
  if (path[0] !== 'listener') return '';
  if (place.index === 1) return ` (listener types are ${LISTENER_TYPES.join(', ')})`;
  if (place.index === 3) {
    const types = listenerKeyTypes(path[3] as string);
    if (types !== undefined) return ` (${path[3]} applies only to ${types.join(', ')} listeners)`;
  }
  return '';
}

function flagEntries(overrides: NonNullable<LoadOptions['overrides']>, assembly: ConfigAssembly): Entry[] {
  const entries: Entry[] = [];
  const { nodeId, defaultStartups } = overrides;
  if (nodeId !== undefined) {
    if (!Number.isSafeInteger(nodeId) || nodeId < 0) assembly.problem('command-line flag --id', 'node.id', `expected an integer ≥ 0, got ${String(nodeId)}`);
    else if (nodeId > 0) entries.push({ path: ['node', 'id'], value: nodeId, source: 'command-line flag --id' });
  }
  if (defaultStartups !== undefined) entries.push({ path: ['plugins', 'default_startups'], value: defaultStartups, source: 'command-line flag --plugins-default-startups' });
  return entries;
}

const NODE_ADDR = /^\d+@(?:\[[^\]]+\]|[^:@\s]+):\d{1,5}$/;

/** Cluster flags are not in the file (RMQTT has them on the command line only); checked here. */
function clusterFlags(overrides: NonNullable<LoadOptions['overrides']>, assembly: ConfigAssembly): ClusterFlags {
  const lists = { nodeGrpcAddrs: '--node-grpc-addrs', raftPeerAddrs: '--raft-peer-addrs' } as const;
  const out: ClusterFlags = { nodeGrpcAddrs: [], raftPeerAddrs: [], raftLeaderId: 0 };
  for (const [prop, flag] of Object.entries(lists) as [keyof typeof lists, string][]) {
    const value: unknown = overrides[prop];
    if (value === undefined) continue;
    if (Array.isArray(value) && value.every((v) => typeof v === 'string' && NODE_ADDR.test(v))) out[prop] = [...(value as string[])];
    else assembly.problem(`command-line flag ${flag}`, '', `expected "id@host:port" entries such as "1@10.0.0.1:5363", got ${JSON.stringify(value)}`);
  }
  const leader = overrides.raftLeaderId;
  if (leader !== undefined) {
    if (Number.isSafeInteger(leader) && leader >= 0) out.raftLeaderId = leader;
    else assembly.problem('command-line flag --raft-leader-id', '', `expected an integer ≥ 0, got ${String(leader)}`);
  }
  return out;
}

/** Checks between keys, for listeners whose keys are valid on their own. */
function crossChecks(assembly: ConfigAssembly, refs: readonly ListenerRef[]): void {
  const bound: { id: string; host: string; port: number }[] = [];
  for (const { type, name } of refs) {
    const base = `listener.${type}.${name}`;
    if (assembly.hasProblemWith(base)) continue;
    const l = assembly.get(base) as Record<string, unknown>;
    // A key left unset is blamed on the source that defined the listener.
    const definedBy = [...assembly.origins].find(([k]) => k.startsWith(`${base}.`))?.[1] ?? 'default listener';
    const src = (key: string): string => assembly.origins.get(`${base}.${key}`) ?? definedBy;
    if ((l['min_keepalive'] as number) > (l['max_keepalive'] as number)) {
      assembly.problem(src('min_keepalive'), `${base}.min_keepalive`, `must not exceed max_keepalive (${String(l['max_keepalive'])}), got ${String(l['min_keepalive'])}`);
    }
    if ((l['max_packet_size'] as number) > MAX_PACKET_SIZE) {
      assembly.problem(src('max_packet_size'), `${base}.max_packet_size`, `expected a size up to ${MAX_PACKET_SIZE} bytes (the MQTT maximum; 0 means that too), got ${String(l['max_packet_size'])}`);
    }
    if (l['enable'] !== true || type === 'quic') continue;
    // File existence is the TLS listener's concern when it starts; a missing setting is caught now.
    if (type === 'tls' || type === 'wss') {
      for (const k of ['cert', 'key']) if (l[k] === null || l[k] === '') assembly.problem(src(k), `${base}.${k}`, `required for an enabled ${type} listener`);
    }
    const { host, port } = l['addr'] as { host: string; port: number };
    const wildcard = (h: string): boolean => h === '0.0.0.0' || h === '::';
    const clash = port === 0 ? undefined : bound.find((b) => b.port === port && (b.host === host || wildcard(b.host) || wildcard(host)));
    if (clash !== undefined) assembly.problem(src('addr'), `${base}.addr`, `port ${port} is already used by listener.${clash.id}`);
    bound.push({ id: `${type}.${name}`, host, port });
  }
}

/** One warning line naming every unimplemented RMQTT setting that a source sets. */
function unimplementedWarning(assembly: ConfigAssembly, fileLabels: readonly string[]): string[] {
  const fileLabel = fileLabels.length === 1 ? fileLabels[0] : undefined;
  const named: string[] = [];
  for (const [key, source] of assembly.origins) {
    if (!isUnimplementedKey(key)) continue;
    // All keys of a QUIC listener collapse into the listener itself.
    const quic = /^listener\.quic\.[^.]+/.exec(key)?.[0];
    const label = quic !== undefined ? `${quic} (QUIC, not started)` : key;
    const shown = source === fileLabel ? label : `${label} (${source})`;
    if (!named.includes(shown)) named.push(shown);
  }
  if (named.length === 0) return [];
  const prefix = fileLabel !== undefined && [...assembly.origins].some(([k, s]) => s === fileLabel && isUnimplementedKey(k)) ? `${fileLabel}: ` : '';
  return [`${prefix}RMQTT settings accepted but not implemented by rmqtt-ts (they have no effect): ${named.join(', ')}`];
}

export async function loadBrokerConfig(options: LoadOptions = {}): Promise<LoadedConfig> {
  return loadBrokerConfigSync(options);
}

/** The same as loadBrokerConfig, synchronously (everything it reads is local). */
export function loadBrokerConfigSync(options: LoadOptions = {}): LoadedConfig {
  registerFormats();
  const cwd = options.cwd ?? process.cwd();
  // several files (-f a -f b) apply in order, a later file's keys winning
  const fileList = options.file === undefined ? [] : Array.isArray(options.file) ? options.file : [options.file];
  const files = fileList.map((label) => {
    const path = isAbsolute(label) ? label : resolve(cwd, label);
    return { label, path, tree: readTomlFile(path, label) };
  });
  const fileLabels = files.map((f) => f.label);

  const envList: Entry[] = envEntries(options.env ?? process.env, ENV_PREFIX, [PLUGIN_ENV_PREFIX]).map((e) => ({ path: e.path, value: e.value, source: envSource(e.variable) }));
  // An undefined value means "not given", as an absent key would.
  const valueList: Entry[] = Object.entries(options.values ?? {})
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => ({ path: key.split('.'), value, source: VALUES_SOURCE }));

  const early: ConfigAssembly['problems'] = [];
  const { refs, bad } = collectListeners(files, [...envList, ...valueList], early);
  const schema = buildBrokerSchema(refs);
  const assembly = new ConfigAssembly(schema, {
    unknownKeyHint,
    skip: (path) => path[0] === 'listener' && path.length >= 3 && bad.has(`${path[1]}.${path[2]}`),
  });
  assembly.problems.push(...early);

  for (const f of files) assembly.apply([], f.tree, f.label);
  for (const e of envList) assembly.apply(e.path, e.value, e.source);
  for (const e of valueList) assembly.apply(e.path, e.value, e.source);
  const overrides = options.overrides ?? {};
  for (const e of flagEntries(overrides, assembly)) assembly.apply(e.path, e.value, e.source);
  const cluster = clusterFlags(overrides, assembly);

  assembly.validate();
  crossChecks(assembly, refs);
  // Problems listed in precedence order: the file's, then the environment's, values', flags'.
  assembly.throwIfProblems((source) => {
    const i = fileLabels.indexOf(source);
    if (i >= 0) return i / (fileLabels.length + 1);
    return source.startsWith('environment') ? 1 : source === VALUES_SOURCE ? 2 : source.startsWith('command-line') ? 3 : 4;
  });

  const properties = assembly.properties();
  return {
    config: toBrokerConfig(properties, refs, cluster),
    warnings: unimplementedWarning(assembly, fileLabels),
    file: files.length === 0 ? undefined : files[files.length - 1]!.path,
    files: files.map((f) => f.path),
    properties,
    schema: assembly.def,
  };
}
