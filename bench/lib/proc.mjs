/**
 * Child processes, /proc readings and loopback ports.
 *
 * Every child is started in its own process group (detached) and tracked, so that an interrupt or an
 * error kills all of them (brokers, mqbench and mqbench's --procs workers) and never leaves one running.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';

const children = new Set();

/** spawn() in a new process group, tracked until it exits. Resolves `child.done` with { code, signal }. */
export function spawnTracked(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { ...opts, detached: true });
  children.add(child);
  child.done = new Promise((resolve) => {
    child.once('error', (err) => {
      children.delete(child);
      child.spawnError = err;
      resolve({ code: null, signal: null, error: err });
    });
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return child;
}

/** Signals a tracked child's whole process group (falls back to the pid itself). */
export function signalGroup(child, sig) {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    try {
      process.kill(child.pid, sig);
    } catch {
      // already gone
    }
  }
}

/** SIGTERM, then SIGKILL to the group after `graceMs`. Resolves when the child has exited. */
export async function stopChild(child, graceMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null || child.spawnError) return child.done;
  try {
    process.kill(child.pid, 'SIGTERM');
  } catch {
    // already gone
  }
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
  const r = await child.done;
  clearTimeout(timer);
  signalGroup(child, 'SIGKILL'); // leftovers of the group, if any
  return r;
}

/** Kills every tracked child at once (used on interrupt and at exit). */
export function killAllChildren(sig = 'SIGKILL') {
  for (const c of children) signalGroup(c, sig);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A free TCP port on 127.0.0.1 (bound, read and released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Whether 127.0.0.1:port accepts a TCP connection (the probe is closed at once). */
export function portAccepts(port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

/** Host CPU counters from /proc/stat: busy and total jiffies over all cores. */
export function hostCpu() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest fields are already in user/nice)
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = v[3] + v[4];
  return { busy: total - idle, total, irq: v[5] + v[6] };
}

/** Host busy % (of all cores) between two hostCpu() readings. */
export function busyPct(a, b) {
  const dt = b.total - a.total;
  return dt > 0 ? (100 * (b.busy - a.busy)) / dt : 0;
}

/** Host irq+softirq % (of all cores) between two hostCpu() readings: kernel work no process is charged for. */
export function irqPct(a, b) {
  const dt = b.total - a.total;
  return dt > 0 ? (100 * (b.irq - a.irq)) / dt : 0;
}

/** utime+stime of a process in clock ticks, or -1. */
export function procTicks(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return -1;
  }
}

/** CPU ticks of this process's reaped children (cutime+cstime): the CPU of every child that has exited. */
export function reapedChildTicks() {
  const s = readFileSync('/proc/self/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[13]) + Number(f[14]);
}

/** VmRSS of a process in KB, or -1. */
export function rssKb(pid) {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}

export const TICKS_PER_S = 100; // USER_HZ on Linux

/**
 * Waits until the host is less than `maxBusy`% busy (two /proc/stat readings 1 s apart), at most `timeoutS`.
 * Returns { busy, waited_s, gave_up }.
 */
export async function waitHostIdle(maxBusy = 20, timeoutS = 30, stop = () => false) {
  const t0 = Date.now();
  let busy = 100;
  for (;;) {
    const a = hostCpu();
    await sleep(1000);
    busy = busyPct(a, hostCpu());
    const waited = (Date.now() - t0) / 1000;
    if (busy < maxBusy) return { busy, waited_s: waited, gave_up: false };
    if (waited >= timeoutS || stop()) return { busy, waited_s: waited, gave_up: true };
  }
}

/** Quotes one word for sh. */
export function shq(s) {
  // placeholders shown in the report (<conf>, $PORT) stay as they are
  if (/^(<[\w.-]+>|\$[A-Z_]+)$/.test(s)) return s;
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${String(s).replace(/'/g, `'\\''`)}'`;
}
