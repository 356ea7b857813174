import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { Formats, intFormat, InvalidInput, numberFormat, oneOfFormat, parseAddr, parseDuration, parseDurationSeconds, parseRate, parseSize, parseStringList } from './formats.js';
import { loadPluginConfig } from './plugin-config.js';

const dir = mkdtempSync(join(tmpdir(), 'rmqtt-formats-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Validates `toml` against a one-key-per-format schema through the real convict path. */
function load(toml: string, schema: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): Record<string, unknown> {
  writeFileSync(join(dir, 'rmqtt-fmt.toml'), toml);
  return loadPluginConfig({ name: 'fmt', schema, dir, env }).config;
}

function loadError(toml: string, schema: Record<string, unknown>): string {
  try {
    load(toml, schema);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the config to be refused');
}

describe('duration', () => {
  test.each([
    ['2500ms', 2500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['0h', 0],
    ['300', 300_000],
    ['1_000', 1_000_000],
    ['1_000ms', 1000],
    ['1.5s', 1500],
  ])('%s → %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  test('a plain number means seconds, as RMQTT', () => {
    expect(parseDuration(300)).toBe(300_000);
  });

  test.each(['abc', '-1s', '5x', '', '1h30m', '1__0s'])('%j is refused', (text) => {
    expect(parseDuration(text)).toBeInstanceOf(InvalidInput);
  });

  test('duration-s gives whole seconds, rounded down', () => {
    expect(parseDurationSeconds('5m')).toBe(300);
    expect(parseDurationSeconds('2500ms')).toBe(2);
    expect(parseDurationSeconds(7200)).toBe(7200);
  });

  test('TOML integers (with _ separators) and strings both convert in a schema', () => {
    const config = load('a = 300\nb = 1_000\nc = "0h"\nd = "2500ms"\ne = "5m"\n', {
      a: { format: Formats.duration, default: '1s' },
      b: { format: Formats.duration, default: '1s' },
      c: { format: Formats.duration, default: '1s' },
      d: { format: Formats.duration, default: '1s' },
      e: { format: Formats.durationSeconds, default: '1s' },
    });
    expect(config).toEqual({ a: 300_000, b: 1_000_000, c: 0, d: 2500, e: 300 });
  });

  test('string defaults convert too', () => {
    expect(load('', { a: { format: Formats.duration, default: '30s' }, b: { format: Formats.duration, default: 5 } })).toEqual({ a: 30_000, b: 5000 });
  });

  test('a bad duration names key, expectation and the text', () => {
    expect(loadError('a = "soon"\n', { a: { format: Formats.duration, default: '1s' } })).toBe(`${join(dir, 'rmqtt-fmt.toml')}: a: expected a duration such as "2500ms", "30s", "5m", "2h", "1d" or a number of seconds, got "soon"`);
  });
});

describe('size', () => {
  test.each([
    ['1MB', 1_048_576],
    ['1M', 1_048_576],
    ['512K', 524_288],
    ['512KB', 524_288],
    ['3G', 3 * 1024 ** 3],
    ['3GB', 3 * 1024 ** 3],
    ['100B', 100],
    ['1_024', 1024],
    ['0', 0],
  ])('%s → %i bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  test('plain numbers are bytes', () => {
    expect(parseSize(2048)).toBe(2048);
    expect(load('s = 2048\n', { s: { format: Formats.size, default: '1M' } })).toEqual({ s: 2048 });
  });

  test.each(['1XB', 'MB', '-1K', 'lots'])('%j is refused', (text) => {
    expect(parseSize(text)).toBeInstanceOf(InvalidInput);
  });
});

describe('rate', () => {
  test('"burst,period"', () => {
    expect(parseRate('1000,1s')).toEqual({ burst: 1000, periodMs: 1000 });
    expect(parseRate('5, 2500ms')).toEqual({ burst: 5, periodMs: 2500 });
  });

  test('a byte rate burst may be a size', () => {
    expect(parseRate('1MB,1s')).toEqual({ burst: 1_048_576, periodMs: 1000 });
  });

  test('"0", 0 and a zero burst mean off', () => {
    expect(parseRate('0')).toBeNull();
    expect(parseRate(0)).toBeNull();
    expect(parseRate('0,1s')).toBeNull();
  });

  test.each(['abc', '10', '10,0s', '1,2,3', 'x,1s'])('%j is refused', (text) => {
    expect(parseRate(text)).toBeInstanceOf(InvalidInput);
  });

  test('unset rate keys are null; 0 in the file is off', () => {
    const schema = { r: { format: Formats.rate, default: 0 }, s: { format: Formats.rate, default: 0 }, t: { format: Formats.rate, default: '10,1s' } };
    expect(load('s = 0\nt = "1MB,2s"\n', schema)).toEqual({ r: null, s: null, t: { burst: 1_048_576, periodMs: 2000 } });
  });

  test('a zero period says why it is refused', () => {
    expect(loadError('r = "10,0s"\n', { r: { format: Formats.rate, default: 0 } })).toMatch(/r: expected a rate "burst,period" .*, got "10,0s" \(the period must be above 0\)$/);
  });
});

describe('addr', () => {
  test.each([
    ['0.0.0.0:1883', { host: '0.0.0.0', port: 1883 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['[::1]:1883', { host: '::1', port: 1883 }],
    ['[::]:8883', { host: '::', port: 8883 }],
    [':1883', { host: '0.0.0.0', port: 1883 }],
    ['localhost:1883', { host: 'localhost', port: 1883 }],
  ])('%s', (text, addr) => {
    expect(parseAddr(text)).toEqual(addr);
  });

  test.each(['1883', '0.0.0.0', '0.0.0.0:70000', '300.1.1.1:1', '[zz]:1', 'a b:1'])('%j is refused', (text) => {
    expect(parseAddr(text)).toBeInstanceOf(InvalidInput);
  });

  test('an IPv6 address without brackets gets a hint', () => {
    expect(loadError('a = "::1:1883"\n', { a: { format: Formats.addr, default: ':1' } })).toMatch(/a: expected an address "host:port" .*, got "::1:1883" \(write an IPv6 address in brackets, as "\[::1\]:1883"\)$/);
  });
});

describe('string-list', () => {
  test('arrays of strings, or one comma/space separated string', () => {
    expect(parseStringList('a, b c,,d')).toEqual(['a', 'b', 'c', 'd']);
    expect(load('l = ["x", "y"]\n', { l: { format: Formats.stringList, default: [] } })).toEqual({ l: ['x', 'y'] });
    expect(load('', { l: { format: Formats.stringList, default: [] } }, { RMQTT_PLUGIN_FMT__L: 'p q,r' })).toEqual({ l: ['p', 'q', 'r'] });
  });

  test('non-string items are refused', () => {
    expect(loadError('l = [1, 2]\n', { l: { format: Formats.stringList, default: [] } })).toMatch(/l: expected a list of names such as \["a", "b"\], got \[1,2\]$/);
  });
});

describe('bounded numbers, enums, booleans', () => {
  const schema = {
    i: { format: intFormat(1, 65535), default: 16 },
    n: { format: numberFormat(0.5, 1, { minExclusive: true }), default: 0.75 },
    e: { format: oneOfFormat(['a', 'b']), default: 'a' },
    b: { format: Formats.bool, default: false },
  };

  test('messages say the range and quote the value', () => {
    const message = loadError('i = 0\nn = 0.5\ne = "c"\nb = "yes"\n', schema);
    expect(message.split('\n').map((l) => l.replace(/^.*rmqtt-fmt\.toml: /, ''))).toEqual([
      'i: expected an integer from 1 to 65535, got 0',
      'n: expected a number above 0.5 and at most 1, got 0.5',
      'e: expected one of "a", "b", got "c"',
      'b: expected true or false, got "yes"',
    ]);
  });

  test('a plugin schema can name a bounded format as a plain string', () => {
    const named = { i: { format: 'integer 2..4', default: 2 }, n: { format: 'number [0..1]', default: 0 }, e: { format: 'one of x|y', default: 'x' } };
    expect(load('i = 4\nn = 1\ne = "y"\n', named)).toEqual({ i: 4, n: 1, e: 'y' });
    expect(loadError('i = 5\n', named)).toMatch(/i: expected an integer from 2 to 4, got 5$/);
  });

  test('an unknown format name is the schema author\'s error', () => {
    expect(() => load('', { a: { format: 'no-such-format', default: 1 } })).toThrow(/^invalid config schema: 'a' uses an unknown format type: no-such-format$/);
  });

  test('strings from the environment are coerced by format', () => {
    expect(load('', schema, { RMQTT_PLUGIN_FMT__I: '1_024', RMQTT_PLUGIN_FMT__N: '1', RMQTT_PLUGIN_FMT__E: 'b', RMQTT_PLUGIN_FMT__B: 'TRUE' })).toEqual({ i: 1024, n: 1, e: 'b', b: true });
  });
});
