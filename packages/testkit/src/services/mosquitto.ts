/**
 * A real mosquitto broker (Debian's) for tests: on a free loopback port, optionally with a TLS listener
 * (certificates from makePki), user names and passwords, and persistence so a restart keeps sessions and
 * queued messages. Stopped by process id.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';
import { ServerProcess } from './process.js';
import type { Pki } from './pki.js';

const MOSQUITTO = existsSync('/usr/sbin/mosquitto') ? '/usr/sbin/mosquitto' : 'mosquitto';
const MOSQUITTO_PASSWD = existsSync('/usr/bin/mosquitto_passwd') ? '/usr/bin/mosquitto_passwd' : 'mosquitto_passwd';

export interface MosquittoOptions {
  /** Also a TLS listener with these certificates. */
  tls?: Pki;
  /** The TLS listener asks for a client certificate signed by the CA. */
  requireClientCert?: boolean;
  /** Only these users (name → password) may connect; default anonymous. */
  users?: Record<string, string>;
  /** Keep sessions and queued messages across a (graceful) restart. */
  persistence?: boolean;
}

export interface MosquittoServer {
  readonly port: number;
  /** Port of the TLS listener (when asked for). */
  readonly tlsPort: number | undefined;
  /** `mqtt://127.0.0.1:port` */
  readonly url: string;
  readonly pid: number | undefined;
  /** SIGTERM (mosquitto writes its persistence file) by default. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Start again on the same ports and data. */
  start(): Promise<void>;
  destroy(): Promise<void>;
}

class MosquittoProcess implements MosquittoServer {
  readonly #process: ServerProcess;
  constructor(
    readonly port: number,
    readonly tlsPort: number | undefined,
    readonly dir: string,
    conf: string,
  ) {
    this.#process = new ServerProcess('mosquitto', MOSQUITTO, () => ['-c', conf], tlsPort === undefined ? [port] : [port, tlsPort]);
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#process.pid;
  }

  start(): Promise<void> {
    return this.#process.start();
  }

  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    return this.#process.stop(signal);
  }

  async destroy(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function startMosquitto(options: MosquittoOptions = {}): Promise<MosquittoServer> {
  const dir = mkdtempSync(join(tmpdir(), 'rmqtt-mosquitto-'));
  const port = await freePort();
  const tlsPort = options.tls === undefined ? undefined : await freePort();
  // run as whoever runs the tests (as root mosquitto would switch to its own user, who cannot read the
  // temporary certificate and password files)
  const lines = [`user ${userInfo().username}`, 'per_listener_settings false', 'log_dest none', 'max_queued_messages 100000', 'max_inflight_messages 100'];
  if (options.users !== undefined) {
    const file = join(dir, 'passwd');
    writeFileSync(file, '');
    for (const [user, password] of Object.entries(options.users)) execFileSync(MOSQUITTO_PASSWD, ['-b', file, user, password], { stdio: 'pipe' });
    lines.push('allow_anonymous false', `password_file ${file}`);
  } else {
    lines.push('allow_anonymous true');
  }
  if (options.persistence === true) lines.push('persistence true', `persistence_location ${dir}/`, 'autosave_interval 1');
  lines.push(`listener ${port} 127.0.0.1`);
  if (options.tls !== undefined && tlsPort !== undefined) {
    const t = options.tls;
    lines.push(`listener ${tlsPort} 127.0.0.1`, `cafile ${t.caPath}`, `certfile ${t.serverCert}`, `keyfile ${t.serverKey}`);
    if (options.requireClientCert === true) lines.push('require_certificate true');
  }
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `${lines.join('\n')}\n`);
  const m = new MosquittoProcess(port, tlsPort, dir, conf);
  await m.start();
  return m;
}
