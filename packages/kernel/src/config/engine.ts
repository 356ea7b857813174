/**
 * The machinery shared by the broker config and plugin configs: walk a convict schema, lay values from
 * several sources over it (each value remembers where it came from), validate strictly through convict,
 * and turn every problem into one line naming the source, the dotted key and what was expected.
 */
import convict from 'convict';
import { RmqttError } from '@rmqtt-ts/plugin-api';
import { collectValueErrors, convertDefault, describeValue, ensureFormat, InvalidInput, isPlainObject, NUMBER_AS_TEXT_FORMATS } from './formats.js';

export type SchemaDef = Record<string, unknown>;

export interface Problem {
  /** The file, "environment variable RMQTT_X", "command-line flag --x", … */
  source: string;
  /** Full dotted key, or '' when the problem is not about one key. */
  key: string;
  message: string;
}

/** Where a dotted path lands in a schema. */
export type Place =
  | { kind: 'leaf'; key: string; item: Record<string, unknown> }
  | { kind: 'node'; key: string; children: Record<string, unknown> }
  | { kind: 'unknown'; key: string; index: number; siblings: string[] }
  | { kind: 'below-leaf'; key: string; leafKey: string };

/** convict's own rule: a non-empty object without `default` is a branch; anything else is a setting. */
export function isSchemaLeaf(node: unknown): boolean {
  return !(typeof node === 'object' && node !== null && !Array.isArray(node) && Object.keys(node).length > 0 && !('default' in node));
}

export function locate(def: SchemaDef, path: readonly string[]): Place {
  let children: Record<string, unknown> = def;
  for (let i = 0; i < path.length; i++) {
    const segment = path[i] as string;
    const key = path.slice(0, i + 1).join('.');
    if (!Object.hasOwn(children, segment) || segment === '__proto__') return { kind: 'unknown', key: path.join('.'), index: i, siblings: Object.keys(children) };
    const node = children[segment];
    if (isSchemaLeaf(node)) {
      if (i === path.length - 1) return { kind: 'leaf', key, item: isPlainObject(node) ? node : { default: node } };
      return { kind: 'below-leaf', key: path.join('.'), leafKey: key };
    }
    children = node as Record<string, unknown>;
  }
  return { kind: 'node', key: path.join('.'), children };
}

/**
 * A deep copy of a schema with defaults converted to final values ("30s" → 30000), so defaults and
 * configured values share units, and object-valued formats (addr, rate) have object defaults — convict's
 * validator only treats a setting as one value when its default is an object.
 */
export function normalizeSchema(def: SchemaDef, prefix = ''): SchemaDef {
  const out: SchemaDef = {};
  for (const [name, node] of Object.entries(def)) {
    const key = prefix === '' ? name : `${prefix}.${name}`;
    if (!isSchemaLeaf(node)) {
      out[name] = normalizeSchema(node as SchemaDef, key);
      continue;
    }
    if (!isPlainObject(node) || !('default' in node)) {
      out[name] = node;
      continue;
    }
    ensureFormat(node['format']);
    const converted = convertDefault(node['format'], node['default']);
    if (converted instanceof InvalidInput) throw new RmqttError('ERR_CONFIG', `schema default of ${key} is invalid: ${describeValue(node['default'])}`);
    out[name] = { ...node, default: converted };
  }
  return out;
}

/** Smallest number of single-character edits between two strings. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length] as number;
}

/** ' (did you mean "x"?)' for a close sibling key, else ''. */
export function suggestion(word: string, siblings: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const s of siblings) {
    const d = editDistance(word, s);
    if (d < bestDistance) [best, bestDistance] = [s, d];
  }
  return best !== undefined && bestDistance <= Math.min(2, Math.floor(word.length / 3)) ? ` (did you mean "${best}"?)` : '';
}

export interface AssemblyOptions {
  /** Extra text after "unknown key" (hints about listener types and the like). */
  unknownKeyHint?: (path: readonly string[], place: Extract<Place, { kind: 'unknown' }>) => string;
  /** Paths already reported by the caller: skipped silently. */
  skip?: (path: readonly string[]) => boolean;
}

const NOT_DECLARED = /^configuration param '(.+)' not declared in the schema$/;
const MISSING = /^configuration param '(.+)' missing from config/;

/** One convict instance being filled from sources in precedence order. */
export class ConfigAssembly {
  readonly def: SchemaDef;
  readonly problems: Problem[] = [];
  /** Leaf key → the source that set it last. */
  readonly origins = new Map<string, string>();
  readonly #conf: convict.Config<Record<string, unknown>>;
  readonly #unknown = new Map<string, { source: string; message: string }>();
  readonly #options: AssemblyOptions;

  constructor(def: SchemaDef, options: AssemblyOptions = {}) {
    this.def = normalizeSchema(def);
    this.#options = options;
    // An empty env and argv: convict must not read process.env/argv behind our back; we map env ourselves.
    try {
      this.#conf = convict(this.def as convict.Schema<Record<string, unknown>>, { env: {}, args: [] });
    } catch (err) {
      // A schema mistake (unknown format name, reserved key) is the schema author's, reported as such.
      throw new RmqttError('ERR_CONFIG', `invalid config schema: ${(err as Error).message}`, { cause: err });
    }
  }

  problem(source: string, key: string, message: string): void {
    this.problems.push({ source, key, message });
  }

  /** Lays `value` at `path`, recursing through tables, recording problems instead of throwing. */
  apply(path: readonly string[], value: unknown, source: string): void {
    if (this.#options.skip?.(path) === true) return;
    const place = locate(this.def, path);
    switch (place.kind) {
      case 'leaf':
        this.#set(place.key, prepare(place.item['format'], value), source);
        this.origins.set(place.key, source);
        return;
      case 'node':
        if (!isPlainObject(value)) {
          this.problem(source, place.key, `expected a table of settings, got ${describeValue(value)}`);
          return;
        }
        for (const name of Object.keys(value)) this.apply([...path, name], value[name], source);
        return;
      case 'below-leaf':
        this.#unknown.set(place.key, { source, message: `unknown key (${place.leafKey} is a single setting, not a table)` });
        return;
      case 'unknown': {
        const hint = this.#options.unknownKeyHint?.(path, place) ?? '';
        this.#unknown.set(place.key, { source, message: `unknown key${hint || suggestion(path[place.index] ?? '', place.siblings)}` });
        // Handed to convict as well, so its strict check sees what the file holds.
        if (!path.some((p) => p === '__proto__' || p === 'constructor' || p === 'prototype')) this.#set(place.key, value, source, true);
        return;
      }
    }
  }

  #set(key: string, value: unknown, source: string, quiet = false): void {
    try {
      this.#conf.set(key, value);
    } catch (err) {
      if (!quiet) this.problem(source, key, `cannot be set: ${(err as Error).message}`);
    }
  }

  /** convict's strict validation; every finding becomes a Problem. */
  validate(): void {
    const { thrown, errors } = collectValueErrors(() => {
      this.#conf.validate({ allowed: 'strict' });
    });
    const explained = new Set<string>();
    for (const err of errors) {
      const key = err.fullName ?? '';
      explained.add(`${key}: ${err.message}`);
      this.problem(this.origins.get(key) ?? 'schema default', key, err.message);
    }
    const lines = thrown instanceof Error ? thrown.message.split('\n') : [];
    for (const line of lines) {
      if (line === '' || [...explained].some((e) => line.startsWith(e))) continue;
      const undeclared = NOT_DECLARED.exec(line);
      if (undeclared !== null) {
        const name = undeclared[1] as string;
        if (![...this.#unknown.keys()].some((k) => name === k || name.startsWith(`${k}.`))) this.problem('', name, 'unknown key');
        continue;
      }
      const missing = MISSING.exec(line);
      if (missing !== null) {
        this.problem('', missing[1] as string, 'missing (a table holding it was replaced by a single value)');
        continue;
      }
      // A plugin's own format function: "key: message[: value was …]". A structured value (an array of
      // tables) is not quoted back: it can be long and hold secrets, and the message names the part at fault.
      const m = /^([^\s:]+): (.*)$/.exec(line);
      if (m !== null) {
        const [message = '', value] = (m[2] as string).split(/: value was (.*)$/s);
        const shown = value === undefined || /^[[{]/.test(value) ? message : `${message}, got ${value}`;
        this.problem(this.origins.get(m[1] as string) ?? 'schema default', m[1] as string, shown);
      } else this.problem('', '', line);
    }
    for (const [key, { source, message }] of this.#unknown) this.problem(source, key, message);
  }

  hasProblemWith(key: string): boolean {
    return this.problems.some((p) => p.key === key || p.key.startsWith(`${key}.`));
  }

  /** Throws one ERR_CONFIG listing every problem, one per line, grouped by `rank` of their source. */
  throwIfProblems(rank: (source: string) => number = () => 0): void {
    if (this.problems.length === 0) return;
    const ordered = this.problems.map((p, i) => ({ p, i, r: rank(p.source) })).sort((a, b) => a.r - b.r || a.i - b.i);
    throw new RmqttError('ERR_CONFIG', ordered.map(({ p }) => formatProblem(p)).join('\n'));
  }

  get(key: string): unknown {
    return this.#conf.get(key as never);
  }

  properties(): Record<string, unknown> {
    return this.#conf.getProperties();
  }
}

export function formatProblem(p: Problem): string {
  return [p.source, p.key, p.message].filter((s) => s !== '').join(': ');
}

/** Plain numbers for unit formats go to convict as text so "300" and 300 both mean 300 seconds. */
function prepare(format: unknown, value: unknown): unknown {
  if (typeof format === 'string' && NUMBER_AS_TEXT_FORMATS.has(format) && (typeof value === 'number' || typeof value === 'bigint')) {
    return Number.isFinite(Number(value)) && Number(value) >= 0 ? String(value) : new InvalidInput(value);
  }
  return value;
}

/**
 * '******' in place of every `sensitive: true` setting of `schema` found in `properties`, and of every key
 * named in a setting's `sensitiveKeys` inside its value (e.g. `password` in each of `[[bridges]]`).
 */
export function maskSecrets<T>(properties: T, schema: SchemaDef): T {
  const copy = structuredClone(properties) as unknown;
  maskInto(copy, schema);
  return copy as T;
}

export const MASK = '******';

function maskInto(target: unknown, schema: SchemaDef): void {
  if (!isPlainObject(target)) return;
  for (const [name, node] of Object.entries(schema)) {
    if (!Object.hasOwn(target, name)) continue;
    if (!isSchemaLeaf(node)) maskInto(target[name], node as SchemaDef);
    else if (isPlainObject(node) && node['sensitive'] === true && target[name] !== null && target[name] !== undefined) target[name] = MASK;
    else if (isPlainObject(node) && Array.isArray(node['sensitiveKeys'])) maskKeys(target[name], new Set(node['sensitiveKeys'] as string[]));
  }
}

/** Inside a structured value (an array of tables): every key named in `keys`, at any depth. */
function maskKeys(value: unknown, keys: ReadonlySet<string>): void {
  if (Array.isArray(value)) {
    for (const v of value) maskKeys(v, keys);
    return;
  }
  if (!isPlainObject(value)) return;
  for (const [k, v] of Object.entries(value)) {
    if (keys.has(k) && v !== null && v !== undefined) value[k] = MASK;
    else maskKeys(v, keys);
  }
}
