/**
 * Value formats shared by the broker config and every plugin schema: durations, sizes, rates, addresses,
 * lists, bounded numbers. Each format is registered with convict under a name (`format: 'duration'`) and
 * has two halves: `coerce` turns text (TOML strings, environment variables) into the final value, and
 * `validate` checks the final value. A text that cannot be read is not thrown at coerce time — convict
 * would stop at the first one — but kept as an InvalidInput so validation can report every problem and
 * quote what was written.
 */
import { isIPv4, isIPv6 } from 'node:net';
import convict from 'convict';
import { parse as parseToml } from 'smol-toml';
import { DURATION_EXPECTED, DURATION_UNITS, SIZE_EXPECTED, SIZE_UNITS, readDecimal, readWithUnit } from '@rmqtt-ts/plugin-api';

/**
 * Text a format could not read, kept for the error message. Private fields only: convict flattens any
 * object with enumerable keys into sub-keys, and this must stay one value.
 */
export class InvalidInput {
  readonly #raw: unknown;
  readonly #reason: string | undefined;
  constructor(raw: unknown, reason?: string) {
    this.#raw = raw;
    this.#reason = reason;
  }
  get raw(): unknown {
    return this.#raw;
  }
  get reason(): string | undefined {
    return this.#reason;
  }
}

/** A value rejected by one of our formats; convict sets `fullName` to the dotted key when it catches it. */
export class ConfigValueError extends Error {
  fullName?: string;
}

export interface AddrValue {
  host: string;
  port: number;
}

export interface RateValue {
  burst: number;
  periodMs: number;
}

interface FormatDef {
  /** "expected …" text in error messages. */
  expected: string;
  /** Text → final value (or InvalidInput). */
  parse(text: string): unknown;
  /** Is this a valid final value? */
  check(value: unknown): boolean;
}

/** The format names plugin schemas can use. */
export const Formats = {
  duration: 'duration',
  durationSeconds: 'duration-s',
  size: 'size',
  rate: 'rate',
  addr: 'addr',
  stringList: 'string-list',
  bool: 'bool',
  uint: 'uint',
  string: 'string',
} as const;

/**
 * Formats whose plain numbers carry a unit (seconds, bytes): such a number is handed to convict as text so
 * it goes through the same conversion as "30s" — convict only coerces strings.
 */
export const NUMBER_AS_TEXT_FORMATS: ReadonlySet<string> = new Set([Formats.duration, Formats.durationSeconds, Formats.size, Formats.rate]);

function readInteger(text: string): number | InvalidInput {
  const t = text.trim();
  if (!/^-?\d(?:_?\d)*$/.test(t)) return new InvalidInput(text);
  const n = Number(t.replaceAll('_', ''));
  return Number.isSafeInteger(n) ? n : new InvalidInput(text, 'too large');
}

function withUnit(text: string, units: Readonly<Record<string, number>>): number | InvalidInput {
  const v = readWithUnit(text, units);
  return typeof v === 'number' ? v : new InvalidInput(text, v.error);
}

/** "2500ms", "30s", "5m", "2h", "1d", "0h" or a plain number of seconds (as RMQTT) → milliseconds. */
export function parseDuration(text: string | number): number | InvalidInput {
  return withUnit(String(text), DURATION_UNITS);
}

/** As parseDuration, in whole seconds (rounded down, as RMQTT's Duration::as_secs). */
export function parseDurationSeconds(text: string | number): number | InvalidInput {
  const ms = parseDuration(text);
  return ms instanceof InvalidInput ? ms : Math.floor(ms / 1000);
}

/** "512K", "1MB", "3G", "100B" or a plain number of bytes → bytes, in steps of 1024. */
export function parseSize(text: string | number): number | InvalidInput {
  return withUnit(String(text), SIZE_UNITS);
}

/** "burst,period" ("1000,1s", "1MB,1s"); "0" or a zero burst means off (null). */
export function parseRate(text: string | number): RateValue | null | InvalidInput {
  const t = String(text).trim();
  if (t === '0' || t === '') return null;
  const parts = t.split(',');
  if (parts.length !== 2) return new InvalidInput(text);
  const burst = parseSize(parts[0] ?? '');
  const periodMs = parseDuration(parts[1] ?? '');
  if (burst instanceof InvalidInput || periodMs instanceof InvalidInput) return new InvalidInput(text);
  if (burst === 0) return null;
  if (periodMs === 0) return new InvalidInput(text, 'the period must be above 0');
  return { burst, periodMs };
}

const HOSTNAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** "0.0.0.0:1883", "127.0.0.1:0", "[::1]:1883", ":1883" (all interfaces) → { host, port }. */
export function parseAddr(text: string): AddrValue | InvalidInput {
  const t = text.trim();
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(t);
  if (m === null) {
    const colons = t.split(':').length - 1;
    return new InvalidInput(text, colons > 1 && !t.startsWith('[') ? 'write an IPv6 address in brackets, as "[::1]:1883"' : undefined);
  }
  const port = Number(m[3]);
  if (port > 65535) return new InvalidInput(text, 'the port must be 0 to 65535');
  if (m[1] !== undefined) return isIPv6(m[1]) ? { host: m[1], port } : new InvalidInput(text, `"${m[1]}" is not an IPv6 address`);
  const host = m[2] ?? '';
  if (host === '') return { host: '0.0.0.0', port };
  // A dotted all-digit host that is not an IPv4 address is a typo, not a host name.
  if (isIPv4(host) || (HOSTNAME.test(host) && !/^[\d.]+$/.test(host))) return { host, port };
  return new InvalidInput(text, `"${host}" is not an IP address or host name`);
}

/** A list written as one string (environment variables): "a,b c" → ["a", "b", "c"]. */
export function parseStringList(text: string): string[] {
  return text.split(/[\s,]+/).filter((s) => s.length > 0);
}

/** A table: a plain object, including the prototype-less ones smol-toml builds. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

const FORMATS = new Map<string, FormatDef>([
  [Formats.duration, { expected: DURATION_EXPECTED, parse: parseDuration, check: isCount }],
  [Formats.durationSeconds, { expected: 'a duration such as "30s", "5m", "2h", "1d" or a number of seconds', parse: parseDurationSeconds, check: isCount }],
  [Formats.size, { expected: SIZE_EXPECTED, parse: parseSize, check: isCount }],
  [
    Formats.rate,
    {
      expected: 'a rate "burst,period" such as "1000,1s" or "1MB,1s", or 0 for off',
      parse: parseRate,
      check: (v) => v === null || (isPlainObject(v) && Object.keys(v).length === 2 && Number.isSafeInteger(v['burst']) && (v['burst'] as number) > 0 && Number.isSafeInteger(v['periodMs']) && (v['periodMs'] as number) > 0),
    },
  ],
  [
    Formats.addr,
    {
      expected: 'an address "host:port" such as "0.0.0.0:1883" or "[::1]:1883"',
      parse: parseAddr,
      check: (v) => isPlainObject(v) && Object.keys(v).length === 2 && typeof v['host'] === 'string' && Number.isInteger(v['port']) && (v['port'] as number) >= 0 && (v['port'] as number) <= 65535,
    },
  ],
  [Formats.stringList, { expected: 'a list of names such as ["a", "b"]', parse: parseStringList, check: (v) => Array.isArray(v) && v.every((s) => typeof s === 'string' && s.length > 0) }],
  [
    Formats.bool,
    {
      expected: 'true or false',
      parse: (t) => (/^true$/i.test(t.trim()) ? true : /^false$/i.test(t.trim()) ? false : new InvalidInput(t)),
      check: (v) => typeof v === 'boolean',
    },
  ],
  [Formats.uint, { expected: 'an integer ≥ 0', parse: readInteger, check: isCount }],
  [Formats.string, { expected: 'a string', parse: (t) => t, check: (v) => typeof v === 'string' }],
]);

/** What a value looked like, for "got …" (never the value itself when the key is secret). */
export function describeValue(value: unknown, sensitive = false): string {
  if (sensitive) return 'a hidden value';
  if (value instanceof InvalidInput) return describeValue(value.raw);
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value === null) return String(value);
  if (value instanceof Date) return `the date ${String(value)}`;
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

let collected: ConfigValueError[] | undefined;

/**
 * Runs `fn` (a convict validate) and returns the value errors our formats raised during it. convict joins
 * all messages into one string; keeping the error objects gives back each key and message exactly.
 */
export function collectValueErrors(fn: () => void): { thrown: unknown; errors: ConfigValueError[] } {
  const errors: ConfigValueError[] = [];
  const outer = collected;
  collected = errors;
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  } finally {
    collected = outer;
  }
  return { thrown, errors };
}

function reject(expected: string, value: unknown, schemaItem: unknown): never {
  const sensitive = typeof schemaItem === 'object' && schemaItem !== null && (schemaItem as { sensitive?: unknown }).sensitive === true;
  const reason = value instanceof InvalidInput && value.reason !== undefined ? ` (${value.reason})` : '';
  const err = new ConfigValueError(`expected ${expected}, got ${describeValue(value, sensitive)}${reason}`);
  collected?.push(err);
  throw err;
}

function addFormat(name: string, def: FormatDef): void {
  FORMATS.set(name, def);
  convict.addFormat({
    name,
    validate: function validateFormat(value: unknown, schemaItem: unknown) {
      if (value instanceof InvalidInput || !def.check(value)) reject(def.expected, value, schemaItem);
    },
    coerce: function coerceFormat(value: unknown) {
      return typeof value === 'string' ? def.parse(value) : value;
    },
  });
}

/** An integer format bounded to [min, max]; returns its name (registered on first use). */
export function intFormat(min: number, max: number): string {
  const name = `integer ${min}..${max}`;
  if (!FORMATS.has(name)) {
    addFormat(name, {
      expected: max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`,
      parse: readInteger,
      check: (v) => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max,
    });
  }
  return name;
}

/** A number format in (min, max] when `minExclusive`, else [min, max]. */
export function numberFormat(min: number, max: number, options: { minExclusive?: boolean } = {}): string {
  const open = options.minExclusive === true;
  const name = `number ${open ? '(' : '['}${min}..${max}]`;
  if (!FORMATS.has(name)) {
    addFormat(name, {
      expected: open ? `a number above ${min} and at most ${max}` : `a number from ${min} to ${max}`,
      parse: (t) => {
        const n = readDecimal(t.trim());
        return n === undefined ? new InvalidInput(t) : n;
      },
      check: (v) => typeof v === 'number' && Number.isFinite(v) && (open ? v > min : v >= min) && v <= max,
    });
  }
  return name;
}

/** One of a fixed set of strings. */
export function oneOfFormat(values: readonly string[]): string {
  const name = `one of ${values.join('|')}`;
  if (!FORMATS.has(name)) {
    addFormat(name, {
      expected: `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`,
      parse: (t) => t.trim(),
      check: (v) => typeof v === 'string' && values.includes(v),
    });
  }
  return name;
}

/**
 * Registers a parametric format from its name ("integer 1..10", "number (0.5..1]", "one of a|b"), so a
 * plugin schema (which imports nothing from the kernel) can name one as a plain string.
 */
export function ensureFormat(format: unknown): void {
  if (typeof format !== 'string' || FORMATS.has(format)) return;
  const int = /^integer (-?\d+)\.\.(-?\d+)$/.exec(format);
  if (int !== null) intFormat(Number(int[1]), Number(int[2]));
  const num = /^number ([[(])(-?[\d.]+)\.\.(-?[\d.]+)\]$/.exec(format);
  if (num !== null) numberFormat(Number(num[2]), Number(num[3]), { minExclusive: num[1] === '(' });
  if (format.startsWith('one of ') && format.length > 'one of '.length) oneOfFormat(format.slice('one of '.length).split('|'));
}

/**
 * Converts a schema default written the way a user would write it ("30s", "1MB", "0.0.0.0:1883") into
 * the final value, so defaults and configured values come out in the same units. Returns the default
 * unchanged for formats that are not ours.
 */
export function convertDefault(format: unknown, value: unknown): unknown {
  if (typeof format !== 'string') return value;
  const def = FORMATS.get(format);
  if (def === undefined) return value;
  if (typeof value === 'string') return def.parse(value);
  if (typeof value === 'number' && NUMBER_AS_TEXT_FORMATS.has(format)) return def.parse(String(value));
  return value;
}

let registered = false;

/** Registers the formats and the `.toml` parser with convict; safe to call any number of times. */
export function registerFormats(): void {
  if (registered) return;
  registered = true;
  for (const [name, def] of [...FORMATS]) addFormat(name, def);
  convict.addParser({ extension: 'toml', parse: (text: string) => parseToml(text) });
}
