/**
 * The built broker in a child process, as a user runs it (`pnpm build` first): start it and wait for
 * "rmqtt-ts started", read its log lines and listener ports, stop it with a signal. Children, temporary
 * directories and mqtt.js clients made here are cleaned up after each test of the importing file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { MqttClient } from 'mqtt';

export const APP = fileURLToPath(new URL('..', import.meta.url));
export const WORKSPACE = join(APP, '../..');
export const CLI = join(APP, 'dist/cli.js');
export const SHIPPED = join(WORKSPACE, 'configs/rmqtt.toml');
export const RMQTT_REFERENCE = '/work/shared/reference/rmqtt-configs';

export const children: ChildProcess[] = [];
export const mqttClients: MqttClient[] = [];
const dirs: string[] = [];

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "pnpm build" at the workspace root first`);
});

afterEach(async () => {
  await Promise.all(mqttClients.splice(0).map((c) => new Promise<void>((r) => c.end(true, {}, () => r()))));
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'rmqtt-cli-'));
  dirs.push(d);
  return d;
}

/** The test runner's environment without any RMQTT_ variable, plus `extra`. */
export function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RMQTT_') && k !== 'NODE_OPTIONS') out[k] = v;
  return { ...out, ...extra };
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run the command to completion (for flags and config errors). */
export function run(args: string[], extraEnv: Record<string, string> = {}, cwd = WORKSPACE, timeoutMs = 10_000): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: env(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`rmqtt-ts ${args.join(' ')} still running after ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface Running {
  child: ChildProcess;
  lines: LogLine[];
  stderr(): string;
  /** Port of a listener, from its "listening" log line. */
  port(listener: string): number;
  exit: Promise<Exit>;
}

/** Start the broker and wait for "rmqtt-ts started". */
export function start(args: string[], extraEnv: Record<string, string>, cwd = WORKSPACE): Promise<Running> {
  // each broker gets its own embedded session store (the shipped config would use <cwd>/data)
  const store = { RMQTT_PLUGIN_SESSION_STORAGE__STORAGE__SLED__PATH: join(tempDir(), 'session/{node}') };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: env({ ...store, ...extraEnv }), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const lines: LogLine[] = [];
    let stdout = '';
    let partial = '';
    let stderr = '';
    let started = false;
    const exit = new Promise<Exit>((res) => child.on('close', (code, signal) => res({ code, signal, stdout, stderr })));
    const timer = setTimeout(() => reject(new Error(`no "rmqtt-ts started" within 10 s; stdout: ${stdout}; stderr: ${stderr}`)), 10_000);
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      partial += d.toString();
      const parts = partial.split('\n');
      partial = parts.pop()!;
      for (const text of parts) {
        if (text.trim() === '') continue;
        const line = JSON.parse(text) as LogLine;
        lines.push(line);
        if (line.msg === 'rmqtt-ts started' && !started) {
          started = true;
          clearTimeout(timer);
          resolve({
            child,
            lines,
            stderr: () => stderr,
            port(listener) {
              const l = lines.find((x) => x.msg === 'listening' && x['listener'] === listener);
              if (l === undefined) throw new Error(`no listening line for ${listener}`);
              return Number(String(l['addr']).split(':').pop());
            },
            exit,
          });
        }
      }
    });
    void exit.then((e) => {
      if (!started) {
        clearTimeout(timer);
        reject(new Error(`rmqtt-ts exited (${e.code ?? e.signal}) before starting; stdout: ${e.stdout}; stderr: ${e.stderr}`));
      }
    });
  });
}

/** Everything RMQTT's shipped listeners would bind, moved to free loopback ports. */
export const LOOPBACK = {
  RMQTT_LISTENER__TCP__EXTERNAL__ADDR: '127.0.0.1:0',
  RMQTT_LISTENER__TCP__INTERNAL__ADDR: '127.0.0.1:0',
  RMQTT_LISTENER__WS__EXTERNAL__ADDR: '127.0.0.1:0',
  // the HTTP API the shipped config starts: off its fixed default port
  RMQTT_PLUGIN_HTTP_API__HTTP_LADDR: '127.0.0.1:0',
};

export async function stopWith(r: Running, signal: NodeJS.Signals): Promise<{ exit: Exit; ms: number }> {
  const t0 = Date.now();
  r.child.kill(signal);
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still running 5 s after ${signal}`)), 5000));
  const exit = await Promise.race([r.exit, timeout]);
  return { exit, ms: Date.now() - t0 };
}

