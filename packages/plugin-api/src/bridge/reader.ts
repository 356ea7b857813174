/**
 * Reading one table of an array of tables (`[[bridges]]`, `[[bridges.entries]]`) whose schema is checked
 * as a whole: typed getters that say where and what was expected, and a check that no key is unknown.
 * Errors are `Error`s whose message starts with the path (`[0].entries[1].remote.qos: expected …`).
 */
import { isValidTopicFilter, isValidTopicName } from '../topic.js';
import { parseDuration, parseSize } from '../units.js';
import type { QoS } from '../message.js';

function isTable(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : Array.isArray(value) ? 'a list' : isTable(value) ? 'a table' : String(value);
}

/** `${ENV:NAME}` in `text` replaced by the variable; an unset variable is an error naming it. */
export function expandEnv(text: string, where: string, env: NodeJS.ProcessEnv = process.env): string {
  return text.replace(/\$\{ENV:([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
    const v = env[name];
    if (v === undefined) throw new Error(`${where}: environment variable ${name} is not set`);
    return v;
  });
}

export class TableReader {
  readonly #value: Record<string, unknown>;
  readonly #used = new Set<string>();
  constructor(value: unknown, readonly path: string) {
    if (!isTable(value)) throw new Error(`${path}: expected a table, got ${shown(value)}`);
    this.#value = value;
  }

  at(key: string): string {
    return this.path === '' ? key : `${this.path}.${key}`;
  }

  fail(key: string, expected: string, value: unknown): never {
    throw new Error(`${this.at(key)}: expected ${expected}, got ${shown(value)}`);
  }

  raw(key: string): unknown {
    this.#used.add(key);
    return this.#value[key];
  }

  has(key: string): boolean {
    return this.#value[key] !== undefined;
  }

  string(key: string, def: string): string;
  string(key: string): string | undefined;
  string(key: string, def?: string): string | undefined {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v !== 'string') this.fail(key, 'a string', v);
    return v;
  }

  /** A string with `${ENV:NAME}` expanded. */
  secret(key: string): string | undefined {
    const v = this.string(key);
    return v === undefined ? undefined : expandEnv(v, this.at(key));
  }

  bool(key: string, def: boolean): boolean;
  bool(key: string): boolean | undefined;
  bool(key: string, def?: boolean): boolean | undefined {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v !== 'boolean') this.fail(key, 'true or false', v);
    return v;
  }

  int(key: string, min: number, max: number, def: number): number {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(key, `an integer from ${min} to ${max}`, v);
    return v;
  }

  /** Milliseconds; `min` (ms) refuses shorter ones, saying so. */
  duration(key: string, def: number, min = 0): number {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v !== 'string' && typeof v !== 'number') this.fail(key, 'a duration such as "20s"', v);
    let ms: number;
    try {
      ms = parseDuration(v);
    } catch (err) {
      throw new Error(`${this.at(key)}: ${(err as Error).message}`);
    }
    if (ms < min) this.fail(key, `a duration of at least ${min >= 1000 ? `${min / 1000}s` : `${min}ms`}`, v);
    return ms;
  }

  /** Bytes. */
  size(key: string, def: number): number {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v !== 'string' && typeof v !== 'number') this.fail(key, 'a size such as "1M"', v);
    try {
      return parseSize(v);
    } catch (err) {
      throw new Error(`${this.at(key)}: ${(err as Error).message}`);
    }
  }

  qos(key: string, def: QoS): QoS;
  qos(key: string): QoS | undefined;
  qos(key: string, def?: QoS): QoS | undefined {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (v !== 0 && v !== 1 && v !== 2) this.fail(key, '0, 1 or 2', v);
    return v;
  }

  oneOf<T extends string>(key: string, values: readonly T[], def: T): T {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) this.fail(key, `one of ${values.map((x) => `"${x}"`).join(', ')}`, v);
    return v as T;
  }

  topicFilter(key: string): string {
    const v = this.raw(key);
    if (typeof v !== 'string' || !isValidTopicFilter(v)) this.fail(key, 'a topic filter such as "local/#"', v);
    return v;
  }

  /** A topic that may hold `placeholders`; with them replaced by a level it must be a valid topic name. */
  topicTemplate(key: string, placeholders: readonly string[]): string {
    const v = this.raw(key);
    if (typeof v !== 'string' || v === '') this.fail(key, `a topic such as "remote/${placeholders[0] ?? 'topic'}"`, v);
    const sample = placeholders.reduce((t, p) => t.replaceAll(p, 'x'), v);
    if (!isValidTopicName(sample)) this.fail(key, `a topic name (no "+" or "#"; ${placeholders.join(', ')} may appear)`, v);
    return v;
  }

  /** A nested table (TOML dotted keys: `v5.clean_start` is table `v5`), or undefined when absent. */
  table(key: string): TableReader | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    return new TableReader(v, this.at(key));
  }

  /** An array of tables. */
  tables(key: string): TableReader[] {
    const v = this.raw(key);
    if (v === undefined) return [];
    if (!Array.isArray(v)) this.fail(key, 'an array of tables ([[…]])', v);
    return v.map((item, i) => new TableReader(item, `${this.at(key)}[${i}]`));
  }

  /** Throws on a key no getter asked for. */
  done(): void {
    const unknown = Object.keys(this.#value).filter((k) => !this.#used.has(k));
    if (unknown.length > 0) {
      throw new Error(`${this.at(unknown[0]!)}: unknown key (expected one of ${[...this.#used].join(', ')})`);
    }
  }
}
