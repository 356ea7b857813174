/**
 * The `rmqtt-ts` command as a user runs it: the built dist/cli.js in a child process (`pnpm build` first).
 */
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { APP, LOOPBACK, RMQTT_REFERENCE, SHIPPED, WORKSPACE, children, mqttClients, run, start, stopWith, tempDir, type Exit, type Running } from './broker-process.js';

const execFileP = promisify(execFile);

/**
 * mosquitto_sub for one QoS 1 message, with debug output so we can tell when its SUBACK came; line
 * buffered (stdbuf), since into a pipe its output would otherwise only appear at exit.
 */
function mosquittoSub(port: number, version: 'mqttv311' | 'mqttv5', topic: string): { subscribed: Promise<void>; done: Promise<Exit> } {
  const child = spawn('stdbuf', ['-oL', 'mosquitto_sub', '-h', '127.0.0.1', '-p', String(port), '-V', version, '-t', topic, '-q', '1', '-C', '1', '-W', '5', '-d', '-i', `msub-${version}-${process.pid}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  let onSubscribed: () => void = () => undefined;
  const subscribed = new Promise<void>((r) => (onSubscribed = r));
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (stdout.includes('received SUBACK')) onSubscribed();
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Exit>((r) => child.on('close', (code, signal) => r({ code, signal, stdout, stderr })));
  return { subscribed: Promise.race([subscribed, done.then((e) => Promise.reject(new Error(`mosquitto_sub ended: ${e.stdout} ${e.stderr}`)))]), done };
}

/** The payload lines of mosquitto_sub's output (without its debug lines). */
function payloads(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l !== '' && !/^(Client |Subscribed )/.test(l));
}

function mosquittoPub(port: number, version: 'mqttv311' | 'mqttv5', topic: string, message: string, extra: string[] = []): Promise<unknown> {
  return execFileP('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-V', version, '-t', topic, '-m', message, '-q', '1', ...extra], { timeout: 5000 });
}

function wsClient(url: string): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000 });
    mqttClients.push(c);
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });
}

// ---------- flags ----------

describe('rmqtt-ts flags', () => {
  it('--version prints "rmqtt-ts <version>" and exits 0', async () => {
    const { version } = JSON.parse(readFileSync(join(APP, 'package.json'), 'utf8')) as { version: string };
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`rmqtt-ts ${version}\n`);
  });

  it('-V is --version', async () => {
    const r = await run(['-V']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^rmqtt-ts \d+\.\d+\.\d+/);
  });

  it('--help lists -f, --id and --plugins-default-startups and exits 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\s*-f, --config/m);
    expect(r.stdout).toMatch(/^\s*--id\b/m);
    expect(r.stdout).toMatch(/^\s*--plugins-default-startups\b/m);
    expect(r.stdout).toMatch(/^\s*-V, --version/m);
  });

  it('an unknown flag exits non-zero naming the flag', async () => {
    const r = await run(['--bogus-flag']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--bogus-flag');
    expect(r.stderr).toMatch(/unknown option/);
    expect(r.stdout).toBe('');
  });

  it('a bad flag value exits non-zero naming the flag and what it expects', async () => {
    const r = await run(['--id', 'abc']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--id');
    expect(r.stderr).toContain('"abc"');
    expect(r.stderr).toMatch(/expected a non-negative integer/);
  });
});

// ---------- config errors ----------

describe('rmqtt-ts config errors', () => {
  it('a config file that does not exist exits non-zero naming the path', async () => {
    const path = join(tempDir(), 'missing.toml');
    const r = await run(['-f', path]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(path);
    expect(r.stderr).toMatch(/no such file/);
  });

  it('an unknown key in the config file exits non-zero naming the file and the key', async () => {
    const path = join(tempDir(), 'unknown.toml');
    writeFileSync(path, 'listener.tcp.external.addr = "127.0.0.1:0"\nlistener.tcp.external.max_inflght = 16\n');
    const r = await run(['-f', path]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(path);
    expect(r.stderr).toContain('listener.tcp.external.max_inflght');
    expect(r.stderr).toMatch(/unknown key/);
    expect(r.stderr).toContain('max_inflight');
  });

  it('a bad value in the config file exits non-zero naming the file, the key and what was expected', async () => {
    const path = join(tempDir(), 'bad-value.toml');
    writeFileSync(path, 'listener.tcp.external.addr = "127.0.0.1:0"\nlistener.tcp.external.max_inflight = "lots"\n');
    const r = await run(['-f', path]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(path);
    expect(r.stderr).toContain('listener.tcp.external.max_inflight');
    expect(r.stderr).toMatch(/expected [^\n]*integer/);
    expect(r.stderr).toContain('"lots"');
  });

  it('a TOML syntax error exits non-zero naming the file and the line', async () => {
    const path = join(tempDir(), 'syntax.toml');
    writeFileSync(path, 'node.id = 1\nlistener.tcp.external.addr = \n');
    const r = await run(['-f', path]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(path);
    expect(r.stderr).toMatch(/line 2/);
  });

  it('a bad environment value exits non-zero naming the variable, the key and what was expected', async () => {
    const r = await run([], { ...LOOPBACK, RMQTT_LISTENER__TCP__EXTERNAL__MAX_INFLIGHT: 'abc' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('RMQTT_LISTENER__TCP__EXTERNAL__MAX_INFLIGHT');
    expect(r.stderr).toContain('listener.tcp.external.max_inflight');
    expect(r.stderr).toMatch(/expected [^\n]*integer/);
    expect(r.stderr).toContain('"abc"');
  });

  it('an unknown non-RMQTT plugin in --plugins-default-startups stops start-up, naming it', async () => {
    const r = await run(['--plugins-default-startups', 'no-such-plugin-zz'], LOOPBACK);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('no-such-plugin-zz');
    expect(r.stdout).not.toContain('"msg":"listening"');
  });
});

// ---------- RMQTT's own rmqtt.toml ----------

describe('RMQTT’s own rmqtt.toml', () => {
  it('validates and starts, with one warning naming the unimplemented keys', async () => {
    // the file unchanged; its relative cert paths and plugins.dir resolve against the working directory
    const cwd = tempDir();
    copyFileSync(join(RMQTT_REFERENCE, 'rmqtt.toml'), join(cwd, 'rmqtt.toml'));
    mkdirSync(join(cwd, 'rmqtt-bin'));
    await execFileP('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(cwd, 'rmqtt-bin/rmqtt.key'), '-out', join(cwd, 'rmqtt-bin/rmqtt.pem'), '-days', '2', '-subj', '/CN=localhost']);
    mkdirSync(join(cwd, 'rmqtt-plugins'));
    for (const f of ['rmqtt-retainer.toml', 'rmqtt-shared-subscription.toml', 'rmqtt-http-api.toml']) copyFileSync(join(RMQTT_REFERENCE, 'plugins', f), join(cwd, 'rmqtt-plugins', f));

    const r = await start(['-f', 'rmqtt.toml'], {
      ...LOOPBACK,
      RMQTT_LISTENER__TLS__EXTERNAL__ADDR: '127.0.0.1:0',
      RMQTT_LISTENER__WSS__EXTERNAL__ADDR: '127.0.0.1:0',
      // the file logs to /var/log/rmqtt as well; the test reads the console
      RMQTT_LOG__TO: 'console',
    }, cwd);

    const warnings = r.lines.filter((l) => l.level === 40 && l['plugin'] === undefined && String(l.msg).includes('not implemented'));
    expect(warnings).toHaveLength(1);
    // the retainer's file sets batch_messages_limit, which has no effect here (its durable backends do): named in the retainer's own warning
    const retainerWarning = r.lines.find((l) => l.level === 40 && l['plugin'] === 'retainer' && String(l.msg).includes('not implemented'));
    expect(String(retainerWarning?.msg)).toContain('batch_messages_limit');
    expect(String(retainerWarning?.msg)).not.toContain('storage.sled.path');
    const w = String(warnings[0]!.msg);
    expect(w).toContain('rmqtt.toml');
    for (const key of ['task.exec_workers', 'node.busy.check_enable', 'rpc.server_addr', 'listener.tls.external.cert_subject_dn_as_username', 'listener.quic.external']) {
      expect(w).toContain(key);
    }
    // the plugin files it names load unchanged; the HTTP API's history storage is named in its own warning
    expect(r.lines.filter((l) => l.msg === 'plugin started').map((l) => l['plugin'])).toEqual(['retainer', 'shared-subscription', 'http-api']);
    const apiWarning = r.lines.find((l) => l.level === 40 && l['plugin'] === 'http-api' && String(l.msg).includes('not implemented'));
    expect(String(apiWarning?.msg)).toContain('storage.type');
    expect(String(r.lines.find((l) => l.msg === 'http api listening')?.['addr'])).toMatch(/^127\.0\.0\.1:\d+$/);
    const listening = r.lines.filter((l) => l.msg === 'listening').map((l) => l['listener']).sort();
    expect(listening).toEqual(['tcp.external', 'tcp.internal', 'tls.external', 'ws.external', 'wss.external']);

    const { exit } = await stopWith(r, 'SIGTERM');
    expect(exit.code).toBe(0);
  });
});

// ---------- the shipped configs/rmqtt.toml ----------

describe('the shipped configs/rmqtt.toml', () => {
  it('starts on the listeners moved by environment variables and logs their ports', async () => {
    const r = await start(['-f', SHIPPED], LOOPBACK);
    for (const name of ['tcp.external', 'tcp.internal', 'ws.external']) {
      const line = r.lines.find((l) => l.msg === 'listening' && l['listener'] === name);
      expect(String(line?.['addr'])).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(r.port(name)).toBeGreaterThan(0);
    }
    expect(r.lines.find((l) => l.msg === 'plugins.default_startups')?.['plugins']).toEqual(['rmqtt-acl', 'rmqtt-retainer', 'rmqtt-session-storage', 'rmqtt-shared-subscription', 'rmqtt-http-api']);
    expect(r.stderr()).toBe('');
  });

  it('answers GET /api/v1/plugins with the plugins and their states, and loads sys-topic on request', async () => {
    const r = await start(['-f', SHIPPED], LOOPBACK);
    const addr = String(r.lines.find((l) => l.msg === 'http api listening')?.['addr']);
    expect(addr).toMatch(/^127\.0\.0\.1:\d+$/);
    const res = await fetch(`http://${addr}/api/v1/plugins`);
    expect(res.status).toBe(200);
    const [node] = (await res.json()) as { node: number; plugins: { name: string; active: boolean; immutable: boolean }[] }[];
    expect(node!.node).toBe(1);
    const active = node!.plugins.filter((p) => p.active).map((p) => p.name);
    expect(active.sort()).toEqual(['acl', 'http-api', 'retainer', 'session-storage', 'shared-subscription']);
    // installed beside the broker but not started at boot: loaded by name
    const load = await fetch(`http://${addr}/api/v1/plugins/1/rmqtt-sys-topic/load`, { method: 'PUT' });
    expect(load.status).toBe(200);
    expect(await load.json()).toBe(true);
    const sys = (await (await fetch(`http://${addr}/api/v1/plugins/1/sys-topic`)).json()) as { active: boolean };
    expect(sys.active).toBe(true);
  });

  it('the security plugins start and stop over the HTTP API while it runs', async () => {
    const r = await start(['-f', SHIPPED], LOOPBACK);
    const addr = String(r.lines.find((l) => l.msg === 'http api listening')?.['addr']);
    const put = async (path: string): Promise<{ status: number; body: unknown }> => {
      const res = await fetch(`http://${addr}/api/v1/plugins/1/${path}`, { method: 'PUT' });
      return { status: res.status, body: await res.json() };
    };
    const active = async (name: string): Promise<boolean> => ((await (await fetch(`http://${addr}/api/v1/plugins/1/${name}`)).json()) as { active: boolean }).active;
    expect(await active('acl')).toBe(true);
    expect(await put('acl/unload')).toEqual({ status: 200, body: true });
    expect(await active('acl')).toBe(false);
    expect(await put('acl/load')).toEqual({ status: 200, body: true });
    for (const name of ['rmqtt-auth-http', 'rmqtt-web-hook']) {
      expect(await put(`${name}/load`)).toEqual({ status: 200, body: true });
      expect(await put(`${name}/unload`)).toEqual({ status: 200, body: true });
    }
    // and the broker still serves MQTT
    const port = r.port('tcp.external');
    const sub = mosquittoSub(port, 'mqttv311', 'cli/sec/#');
    await sub.subscribed;
    await mosquittoPub(port, 'mqttv311', 'cli/sec/a', 'after');
    expect(payloads((await sub.done).stdout)).toEqual(['after']);
  });

  it('serves MQTT 3.1.1 to mosquitto_sub and mosquitto_pub', async () => {
    const r = await start(['-f', SHIPPED], LOOPBACK);
    const port = r.port('tcp.external');
    const sub = mosquittoSub(port, 'mqttv311', 'cli/v4/#');
    await sub.subscribed;
    await mosquittoPub(port, 'mqttv311', 'cli/v4/a', 'hello 3.1.1');
    const e = await sub.done;
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/received PUBLISH \(d0, q1, r0, m\d+, 'cli\/v4\/a'/);
    expect(payloads(e.stdout)).toEqual(['hello 3.1.1']);
  });

  it('serves MQTT 5.0 to mosquitto_sub and mosquitto_pub', async () => {
    const r = await start(['-f', SHIPPED], LOOPBACK);
    const port = r.port('tcp.external');
    const sub = mosquittoSub(port, 'mqttv5', 'cli/v5/#');
    await sub.subscribed;
    await mosquittoPub(port, 'mqttv5', 'cli/v5/a', 'hello 5.0');
    const e = await sub.done;
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/received CONNACK \(0\)/);
    expect(e.stdout).toMatch(/received PUBLISH \(d0, q1, r0, m\d+, 'cli\/v5\/a'/);
    expect(payloads(e.stdout)).toEqual(['hello 5.0']);
  });

  it('serves the tcp.internal listener too', async () => {
    const r = await start(['-f', SHIPPED], LOOPBACK);
    const port = r.port('tcp.internal');
    const sub = mosquittoSub(port, 'mqttv311', 'cli/internal');
    await sub.subscribed;
    await mosquittoPub(port, 'mqttv311', 'cli/internal', 'inside');
    const e = await sub.done;
    expect(e.code).toBe(0);
    expect(payloads(e.stdout)).toEqual(['inside']);
  });

  it('keeps retained messages (the retainer it starts) for a later mosquitto_sub', async () => {
    const r = await start(['-f', SHIPPED], LOOPBACK);
    const port = r.port('tcp.external');
    await mosquittoPub(port, 'mqttv5', 'cli/retained', 'kept', ['-r']);
    const sub = mosquittoSub(port, 'mqttv5', 'cli/retained');
    const e = await sub.done;
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/received PUBLISH \(d0, q1, r1, m\d+, 'cli\/retained'/);
    expect(payloads(e.stdout)).toEqual(['kept']);
  });

  it('serves an mqtt.js WebSocket client, with messages crossing from TCP to WebSocket and back', async () => {
    const r = await start(['-f', SHIPPED], LOOPBACK);
    const ws = await wsClient(`ws://127.0.0.1:${r.port('ws.external')}/mqtt`);
    const got: { topic: string; payload: string }[] = [];
    ws.on('message', (topic, payload) => got.push({ topic, payload: payload.toString() }));
    await ws.subscribeAsync('cli/ws/#', { qos: 1 });

    await mosquittoPub(r.port('tcp.external'), 'mqttv311', 'cli/ws/from-tcp', 'over tcp');
    await ws.publishAsync('cli/ws/from-ws', 'over ws', { qos: 1 });
    await expect.poll(() => got.length, { timeout: 3000 }).toBe(2);
    expect(got).toEqual([
      { topic: 'cli/ws/from-tcp', payload: 'over tcp' },
      { topic: 'cli/ws/from-ws', payload: 'over ws' },
    ]);
  });

  it('--plugins-default-startups replaces the list of the file', async () => {
    const r = await start(['-f', SHIPPED, '--plugins-default-startups', 'rmqtt-shared-subscription', 'rmqtt-retainer'], LOOPBACK);
    expect(r.lines.find((l) => l.msg === 'plugins.default_startups')?.['plugins']).toEqual(['rmqtt-shared-subscription', 'rmqtt-retainer']);
    expect(r.lines.filter((l) => l.msg === 'plugin started').map((l) => l['plugin'])).toEqual(['shared-subscription', 'retainer']);
  });

  it('--id sets the node id', async () => {
    const r = await start(['-f', SHIPPED, '--id', '7'], LOOPBACK);
    expect(r.lines.find((l) => l.msg === 'rmqtt-ts starting')?.['node']).toBe(7);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} ends it within a few seconds with exit code 0 and a "broker stopped" line`, async () => {
      const r = await start(['-f', SHIPPED], LOOPBACK);
      const port = r.port('tcp.external');
      // a connected client must not hold the shutdown up
      const ws = await wsClient(`ws://127.0.0.1:${r.port('ws.external')}/mqtt`);
      ws.on('error', () => undefined);
      const { exit, ms } = await stopWith(r, signal);
      expect(exit.signal).toBeNull();
      expect(exit.code).toBe(0);
      expect(ms).toBeLessThan(5000);
      expect(r.lines.some((l) => l.msg === 'broker stopped')).toBe(true);
      expect(r.lines.some((l) => l.msg === 'shutting down' && l['signal'] === signal)).toBe(true);
      // the listeners are closed with it
      await expect(mosquittoPub(port, 'mqttv311', 'cli/after', 'x')).rejects.toThrow();
    });
  }
});
