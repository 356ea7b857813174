/**
 * Real Redis servers for tests (Debian's redis-server): one server, or a Redis Cluster of six nodes
 * (three masters, three replicas), each on a free loopback port, with append-only persistence so a
 * stopped and restarted server keeps its data. Stopped by process id.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';
import { ServerProcess } from './process.js';

const REDIS_SERVER = '/usr/bin/redis-server';
const REDIS_CLI = '/usr/bin/redis-cli';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** The server process id (undefined while stopped). */
  readonly pid: number | undefined;
  /** Kill the server (SIGKILL by default: the append-only file, fsynced always, keeps every write). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Start it again on the same port and data directory. */
  start(): Promise<void>;
  /** Stop and remove its data. */
  destroy(): Promise<void>;
}

class RedisProcess implements RedisServer {
  readonly #process: ServerProcess;
  constructor(
    readonly port: number,
    readonly dir: string,
    readonly extra: readonly string[],
  ) {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--protected-mode', 'no', ...extra];
    this.#process = new ServerProcess('redis', REDIS_SERVER, () => args, [port]);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}/`;
  }

  get pid(): number | undefined {
    return this.#process.pid;
  }

  start(): Promise<void> {
    return this.#process.start();
  }

  stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return this.#process.stop(signal);
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A single Redis server on a free port. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const r = new RedisProcess(port, mkdtempSync(join(tmpdir(), 'rmqtt-redis-')), []);
  await r.start();
  return r;
}

export interface RedisCluster {
  readonly nodes: readonly RedisServer[];
  /** The seed URLs of every node. */
  readonly urls: string[];
  destroy(): Promise<void>;
}

/** Six Redis nodes made into a cluster of three masters with one replica each. */
export async function startRedisCluster(): Promise<RedisCluster> {
  const nodes: RedisProcess[] = [];
  try {
    for (let i = 0; i < 6; i++) {
      const port = await freePort(10_000);
      const dir = mkdtempSync(join(tmpdir(), 'rmqtt-redis-cluster-'));
      const n = new RedisProcess(port, dir, ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-node-timeout', '2000']);
      nodes.push(n);
      await n.start();
    }
    const create = spawnSync(REDIS_CLI, ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const states = nodes.map((n) => spawnSync(REDIS_CLI, ['-p', String(n.port), 'cluster', 'info'], { encoding: 'utf8' }).stdout);
      if (states.every((s) => s.includes('cluster_state:ok'))) break;
      if (Date.now() > deadline) throw new Error(`cluster not ok after 20 s: ${states.join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await Promise.all(nodes.map((n) => n.destroy()));
    throw err;
  }
  return {
    nodes,
    urls: nodes.map((n) => n.url),
    destroy: async () => {
      await Promise.all(nodes.map((n) => n.destroy()));
    },
  };
}
