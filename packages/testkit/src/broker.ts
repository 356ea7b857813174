/**
 * Start a broker in this process on free loopback ports, with chosen plugins and config.
 */
import { pino } from 'pino';
import { Broker, loadBrokerConfig, type LoadedConfig } from '@rmqtt-ts/kernel';
import type { Logger, AnyPluginDefinition } from '@rmqtt-ts/plugin-api';

export interface TestBrokerOptions {
  /** Listeners by name (`tcp.external`, `ws.external`, `tls.external`, ...) with their keys (RMQTT names). Default: one tcp.external. */
  listeners?: Record<string, Record<string, unknown>>;
  /** Any other config as dotted RMQTT keys, e.g. `{ 'mqtt.max_sessions': 10 }`. */
  config?: Record<string, unknown>;
  /** Plugin definitions to register; started when also named in `startups` (default: all given). */
  plugins?: readonly AnyPluginDefinition[];
  /** plugins.default_startups (names or packages). Default: the names of `plugins`. */
  startups?: readonly string[];
  /** A config file to start from (e.g. configs/rmqtt.toml); listeners are still moved to free ports. */
  file?: string;
  /** plugins.dir; default a directory with no config files (plugins use their defaults). */
  pluginsDir?: string;
  cwd?: string;
  logger?: Logger;
}

export interface TestBroker {
  readonly broker: Broker;
  /** Port of the first listener (or of the named one). */
  port(listener?: string): number;
  /** `mqtt://127.0.0.1:port` (ws://…/mqtt for WebSocket listeners, and so on). */
  url(listener?: string): string;
  stop(): Promise<void>;
}

/** A logger whose JSON lines are kept (info and above) for a test to read. */
export function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown> & { level: number; msg: string }> } {
  const lines: Array<Record<string, unknown> & { level: number; msg: string }> = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown> & { level: number; msg: string }) });
  return { logger: logger as unknown as Logger, lines };
}

/** A logger for tests: silent unless RMQTT_TEST_LOG names a level. */
export function testLogger(): Logger {
  const level = process.env['RMQTT_TEST_LOG'];
  return pino({ level: level ?? 'silent' }) as unknown as Logger;
}

export async function startBroker(options: TestBrokerOptions = {}): Promise<TestBroker> {
  const listeners = options.listeners ?? { 'tcp.external': {} };
  const values: Record<string, unknown> = {
    'plugins.dir': options.pluginsDir ?? '/nonexistent-rmqtt-test-plugins',
    'log.level': 'error',
  };
  for (const [name, keys] of Object.entries(listeners)) {
    values[`listener.${name}.addr`] = '127.0.0.1:0';
    values[`listener.${name}.allow_anonymous`] = true;
    for (const [k, v] of Object.entries(keys)) values[`listener.${name}.${k}`] = v;
  }
  Object.assign(values, options.config);
  const startups = options.startups ?? (options.plugins ?? []).map((p) => p.name);
  const loaded: LoadedConfig = await loadBrokerConfig({
    file: options.file,
    values,
    env: {},
    cwd: options.cwd,
    overrides: { defaultStartups: [...startups] },
  });
  if (options.file !== undefined) {
    // a shipped file's own listeners: all onto free loopback ports
    for (const l of loaded.config.listeners) l.addr = { host: '127.0.0.1', port: 0 };
  }
  const broker = new Broker({ config: loaded, logger: options.logger ?? testLogger(), plugins: options.plugins, cwd: options.cwd });
  await broker.start();
  const listenerOf = (name?: string) => {
    const l = name === undefined ? broker.listeners[0] : broker.listeners.find((x) => x.config.name === name);
    if (l === undefined) throw new Error(`no listener ${name ?? ''}`);
    return l;
  };
  return {
    broker,
    port: (name) => listenerOf(name).address().port,
    url: (name) => {
      const l = listenerOf(name);
      const scheme = { tcp: 'mqtt', tls: 'mqtts', ws: 'ws', wss: 'wss' }[l.config.type];
      const path = l.config.type === 'ws' || l.config.type === 'wss' ? '/mqtt' : '';
      return `${scheme}://127.0.0.1:${l.address().port}${path}`;
    },
    stop: () => broker.stop(),
  };
}
