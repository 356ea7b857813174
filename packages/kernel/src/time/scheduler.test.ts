import { afterEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import type { Logger } from '@rmqtt-ts/plugin-api';
import { DeadlineScheduler } from './scheduler.js';

const MAX_TIMER_MS = 2 ** 31 - 1;
const DAY = 24 * 60 * 60 * 1000;

function silentLogger(): Logger {
  return pino({ level: 'silent' }) as unknown as Logger;
}

const schedulers: DeadlineScheduler[] = [];
function scheduler(now?: () => number, logger = silentLogger()): DeadlineScheduler {
  const s = new DeadlineScheduler(logger, now);
  schedulers.push(s);
  return s;
}

const restores: (() => void)[] = [];

/**
 * Record the delay of every setTimeout call, passing through to whatever setTimeout is installed (real
 * or fake). A hand-made wrapper rather than vi.spyOn: a spy restored around fake timers can leave the
 * fake setTimeout installed for later tests.
 */
function recordTimeouts(): number[] {
  const delays: number[] = [];
  const original = globalThis.setTimeout;
  const wrapper = ((fn: () => void, delay?: number, ...args: unknown[]) => {
    delays.push(delay ?? 0);
    return (original as (...a: unknown[]) => ReturnType<typeof setTimeout>)(fn, delay, ...args);
  }) as typeof setTimeout;
  globalThis.setTimeout = wrapper;
  restores.push(() => {
    globalThis.setTimeout = original;
  });
  return delays;
}

afterEach(() => {
  for (const s of schedulers.splice(0)) s.close();
  for (const restore of restores.splice(0)) restore();
  vi.useRealTimers();
});

describe('DeadlineScheduler', () => {
  it('fires deadlines in time order, not in the order they were added, each within 1 s of its time', async () => {
    const s = scheduler();
    const t0 = Date.now();
    const fired: { name: string; at: number; late: number }[] = [];
    const add = (name: string, offset: number): void => {
      const at = t0 + offset;
      s.at(at, () => fired.push({ name, at, late: Date.now() - at }));
    };
    add('c', 300);
    add('a', 100);
    add('d', 400);
    add('b', 200);
    await vi.waitFor(() => expect(fired).toHaveLength(4), { timeout: 3000, interval: 20 });
    expect(fired.map((f) => f.name)).toEqual(['a', 'b', 'c', 'd']);
    for (const f of fired) {
      // never early, and late by well under the 1 s the spec allows
      expect(f.late).toBeGreaterThanOrEqual(0);
      expect(f.late).toBeLessThan(1000);
    }
  });

  it('fires equal deadlines in the order they were added', async () => {
    const s = scheduler();
    const at = Date.now() + 50;
    const fired: number[] = [];
    for (let i = 0; i < 5; i++) s.at(at, () => fired.push(i));
    await vi.waitFor(() => expect(fired).toHaveLength(5), { timeout: 2000, interval: 10 });
    expect(fired).toEqual([0, 1, 2, 3, 4]);
  });

  it('fires a deadline already in the past at once', async () => {
    const s = scheduler();
    const fn = vi.fn();
    s.at(Date.now() - 5000, fn);
    await vi.waitFor(() => expect(fn).toHaveBeenCalledTimes(1), { timeout: 500, interval: 5 });
  });

  it('re-arms for an earlier deadline added after a later one', async () => {
    const s = scheduler();
    const t0 = Date.now();
    const late = vi.fn();
    let earlyAt = 0;
    s.at(t0 + 60_000, late);
    s.at(t0 + 50, () => {
      earlyAt = Date.now();
    });
    await vi.waitFor(() => expect(earlyAt).toBeGreaterThan(0), { timeout: 1500, interval: 10 });
    expect(earlyAt - (t0 + 50)).toBeLessThan(1000);
    expect(late).not.toHaveBeenCalled();
    expect(s.size).toBe(1);
  });

  it('does not run a cancelled deadline, and runs the others', async () => {
    const s = scheduler();
    const t0 = Date.now();
    const cancelled = vi.fn();
    const kept = vi.fn();
    const h = s.at(t0 + 50, cancelled);
    s.at(t0 + 100, kept);
    expect(s.size).toBe(2);
    s.cancel(h);
    expect(s.size).toBe(1);
    await vi.waitFor(() => expect(kept).toHaveBeenCalledTimes(1), { timeout: 2000, interval: 10 });
    expect(cancelled).not.toHaveBeenCalled();
    expect(s.size).toBe(0);
  });

  it('cancelling the earliest deadline still lets the next one fire on time', async () => {
    const s = scheduler();
    const t0 = Date.now();
    const first = vi.fn();
    let secondLate = -1;
    s.cancel(s.at(t0 + 30, first));
    s.at(t0 + 80, () => {
      secondLate = Date.now() - (t0 + 80);
    });
    await vi.waitFor(() => expect(secondLate).toBeGreaterThanOrEqual(0), { timeout: 2000, interval: 10 });
    expect(secondLate).toBeLessThan(1000);
    expect(first).not.toHaveBeenCalled();
  });

  it('a cancel after the deadline fired is harmless', async () => {
    const s = scheduler();
    const fn = vi.fn();
    const h = s.at(Date.now(), fn);
    await vi.waitFor(() => expect(fn).toHaveBeenCalledTimes(1), { timeout: 500, interval: 5 });
    expect(() => s.cancel(h)).not.toThrow();
    expect(s.size).toBe(0);
  });

  it('a throwing task is logged and does not stop the others', async () => {
    const logger = silentLogger();
    const errors = vi.fn();
    (logger as unknown as { error: unknown }).error = errors;
    const s = scheduler(undefined, logger);
    const at = Date.now() + 20;
    const after = vi.fn();
    s.at(at, () => {
      throw new Error('task failed');
    });
    s.at(at, after);
    await vi.waitFor(() => expect(after).toHaveBeenCalledTimes(1), { timeout: 1000, interval: 5 });
    expect(errors).toHaveBeenCalledTimes(1);
  });

  it('never arms a timer over 2^31−1 ms for a deadline 30 days ahead (fake timers)', () => {
    vi.useFakeTimers();
    const delays = recordTimeouts();
    const s = scheduler();
    const fn = vi.fn();
    const at = Date.now() + 30 * DAY;
    s.at(at, fn);
    expect(delays.length).toBeGreaterThan(0);
    vi.advanceTimersByTime(30 * DAY - 1);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledTimes(1);
    for (const d of delays) expect(d).toBeLessThanOrEqual(MAX_TIMER_MS);
    // re-armed a couple of times on the way (30 days / 2^31−1 ms ≈ 1.2), never spinning at a clamped 1 ms
    expect(delays.length).toBeLessThan(10);
  });

  it('never arms a timer over 2^31−1 ms for a deadline 30 days ahead (injected clock)', () => {
    const delays = recordTimeouts();
    const base = 1_700_000_000_000;
    const s = scheduler(() => base);
    s.at(base + 30 * DAY, () => undefined);
    expect(delays.length).toBeGreaterThan(0);
    for (const d of delays) {
      expect(d).toBeGreaterThan(0);
      expect(d).toBeLessThanOrEqual(MAX_TIMER_MS);
    }
  });

  it('close() drops every pending deadline', async () => {
    const s = scheduler();
    const fn = vi.fn();
    s.at(Date.now() + 20, fn);
    s.close();
    await new Promise((r) => setTimeout(r, 80));
    expect(fn).not.toHaveBeenCalled();
  });
});
