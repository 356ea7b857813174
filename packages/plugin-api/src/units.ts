/**
 * Durations and sizes as RMQTT's config files write them. The kernel's config formats read them with
 * these, and a plugin reads them with the same functions where a value sits inside a structure the
 * schema checks as a whole (an array of tables such as `[[bridges]]`).
 */

const DIGITS = /^\d(?:_?\d)*(?:\.\d+)?$/;
export const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4 };
export const DURATION_UNITS: Readonly<Record<string, number>> = { '': 1000, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export const DURATION_EXPECTED = 'a duration such as "2500ms", "30s", "5m", "2h", "1d" or a number of seconds';
export const SIZE_EXPECTED = 'a size such as "512K", "1MB", "3G" or a number of bytes';

/** A decimal number as TOML writes it (`1_000`, `0.75`), or undefined. */
export function readDecimal(text: string): number | undefined {
  return DIGITS.test(text) ? Number(text.replaceAll('_', '')) : undefined;
}

/** "30s" with `units` → 30000; `{ error }` says why it cannot be read ("too large", or nothing: unreadable). */
export function readWithUnit(text: string | number, units: Readonly<Record<string, number>>): number | { error: string | undefined } {
  const m = /^([\d_.]+)\s*([a-z]*)$/i.exec(String(text).trim());
  const amount = m === null ? undefined : readDecimal(m[1] ?? '');
  const factor = m === null ? undefined : units[(m[2] ?? '').toLowerCase()];
  if (amount === undefined || factor === undefined) return { error: undefined };
  const value = Math.round(amount * factor);
  return Number.isSafeInteger(value) ? value : { error: 'too large' };
}

function strict(text: string | number, units: Readonly<Record<string, number>>, expected: string): number {
  const v = readWithUnit(text, units);
  if (typeof v === 'number') return v;
  throw new RangeError(`expected ${expected}, got ${JSON.stringify(text)}${v.error === undefined ? '' : ` (${v.error})`}`);
}

/** "2500ms", "30s", "5m", "2h", "1d" or a plain number of seconds → milliseconds; throws a RangeError saying what was expected. */
export function parseDuration(text: string | number): number {
  return strict(text, DURATION_UNITS, DURATION_EXPECTED);
}

/** "512K", "1MB", "3G", "100B" or a plain number of bytes → bytes (steps of 1024); throws a RangeError saying what was expected. */
export function parseSize(text: string | number): number {
  return strict(text, SIZE_UNITS, SIZE_EXPECTED);
}
