/**
 * What a test file starts, stopped for it: `useTestScope()` registers afterEach (end the clients, stop
 * the brokers, close anything else handed to `closeAfterEach`) and afterAll (remove the temporary
 * directories), so a test only says what it needs.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IClientOptions, MqttClient } from 'mqtt';
import { afterAll, afterEach } from 'vitest';
import { startBroker, type TestBroker, type TestBrokerOptions } from './broker.js';
import { connectClient, endClient } from './mqtt-clients.js';

export interface TestScope {
  /** A temporary directory, removed after the file. */
  dir(prefix?: string): string;
  /**
   * A broker (startBroker) whose plugins dir holds `files` (file name → text, e.g. `rmqtt-retainer.toml`);
   * stopped after the test.
   */
  broker(options?: TestBrokerOptions & { files?: Record<string, string> }): Promise<TestBroker>;
  /** An mqtt.js client connected to `url` (connectClient); ended after the test. */
  client(url: string, options?: IClientOptions): Promise<MqttClient>;
  /** Ended (forcibly) after the test: a client made some other way. */
  endAfterEach(client: MqttClient): MqttClient;
  /** Closed after the test: a server, a raw connection, anything with close(). */
  closeAfterEach<T extends { close(): unknown }>(thing: T): T;
}

export function useTestScope(): TestScope {
  const clients: MqttClient[] = [];
  const brokers: TestBroker[] = [];
  const closables: Array<{ close(): unknown }> = [];
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => endClient(c, true)));
    await Promise.all(brokers.splice(0).map((b) => b.stop()));
    await Promise.all(closables.splice(0).map((c) => c.close()));
  });
  afterAll(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const scope: TestScope = {
    dir(prefix = 'rmqtt-test-') {
      const d = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(d);
      return d;
    },
    async broker(options = {}) {
      const { files, ...rest } = options;
      let pluginsDir = rest.pluginsDir;
      if (files !== undefined) {
        pluginsDir ??= scope.dir('rmqtt-plugins-');
        for (const [name, text] of Object.entries(files)) writeFileSync(join(pluginsDir, name), text);
      }
      const b = await startBroker({ ...rest, pluginsDir });
      brokers.push(b);
      return b;
    },
    async client(url, options = {}) {
      const c = await connectClient(url, options);
      clients.push(c);
      return c;
    },
    endAfterEach(client) {
      clients.push(client);
      return client;
    },
    closeAfterEach(thing) {
      closables.push(thing);
      return thing;
    },
  };
  return scope;
}

/** One `[[name]]` table of TOML from keys and their values written as TOML (`'"text"'`, `'5'`, `'true'`). */
export function tomlArrayTable(name: string, keys: Record<string, string>, rest = ''): string {
  return `[[${name}]]\n${Object.entries(keys).map(([k, v]) => `${k} = ${v}`).join('\n')}\n${rest}`;
}

/**
 * A `[[bridges]]` table for the MQTT bridge plugins with quick test timings (connect_timeout 5s,
 * reconnect_interval 200ms, one client, client_id_prefix "edge", enabled), `keys` added or replacing
 * them (values written as TOML), then `entries` (`[[bridges.entries]]` tables).
 */
export function bridgeTable(keys: Record<string, string>, entries = ''): string {
  const defaults = { enable: 'true', client_id_prefix: '"edge"', concurrent_client_limit: '1', connect_timeout: '"5s"', keepalive: '"60s"', reconnect_interval: '"200ms"', mqtt_ver: '"v4"' };
  return tomlArrayTable('bridges', { ...defaults, ...keys }, entries);
}
