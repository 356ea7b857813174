#!/usr/bin/env node
/**
 * `pnpm bench:persistent`: QoS 1 throughput to persistent sessions with session storage off (sessions
 * in memory only) and on — the embedded LMDB store, the same with every batch flushed to disk, and
 * Redis — measured in one run, interleaved, with the same load (lib/persistent-load.mjs, whose
 * subscribers keep their sessions; mqbench's clients are clean). Target: the embedded store keeps at
 * least 50% of the in-memory figure. Writes bench/results/<date>-persistent[-n]/report.md.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBroker } from './lib/brokers.mjs';
import { freePort, killAllChildren, portAccepts, sleep, spawnTracked, stopChild, waitHostIdle } from './lib/proc.mjs';
import { median } from './lib/report.mjs';
import { pnpmBuild } from './lib/setup.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = join(benchDir, '..');

const USAGE = `Usage: pnpm bench:persistent [options]

  --runs N          runs per case (default 3)
  --duration S      measured seconds per run (default 15)
  --pubs N --subs N publishers and persistent subscribers (default 20 each, one topic per pair)
  --window N        unacknowledged QoS 1 messages per publisher (default 10)
  --no-build        measure the existing dist/
  --no-redis        leave the Redis case out
`;

function log(msg) {
  process.stderr.write(`[persistent] ${msg}\n`);
}

const opts = { runs: 3, duration: 15, pubs: 20, subs: 20, window: 10, size: 64, build: true, redis: true };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '-h' || a === '--help') {
    process.stdout.write(USAGE);
    process.exit(0);
  } else if (a === '--no-build') opts.build = false;
  else if (a === '--no-redis') opts.redis = false;
  else if (['--runs', '--duration', '--pubs', '--subs', '--window'].includes(a)) opts[a.slice(2)] = Number(process.argv[++i]);
  else {
    process.stderr.write(`unknown option ${a}\n${USAGE}`);
    process.exit(2);
  }
}

// everything the shipped config starts, except session storage
const WITHOUT_STORAGE = ['--plugins-default-startups', 'rmqtt-acl', 'rmqtt-retainer', 'rmqtt-shared-subscription', 'rmqtt-http-api'];

/** A Redis for the redis case: append-only, fsync every second (Redis's recommended durability). */
async function startRedis(dir) {
  const port = await freePort();
  const child = spawnTracked('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec', '--protected-mode', 'no'], { stdio: 'ignore' });
  for (let i = 0; i < 200 && !(await portAccepts(port)); i++) await sleep(25);
  return { port, child, url: `redis://127.0.0.1:${port}/` };
}

function resultDir() {
  const date = new Date().toISOString().slice(0, 10);
  for (let n = 1; ; n++) {
    const d = join(benchDir, 'results', n === 1 ? `${date}-persistent` : `${date}-persistent-${n}`);
    if (!existsSync(d)) {
      mkdirSync(join(d, 'raw'), { recursive: true });
      return d;
    }
  }
}

function runLoad(port, prefix) {
  return new Promise((resolve, reject) => {
    const args = [join(benchDir, 'lib/persistent-load.mjs'), '--port', String(port), '--pubs', String(opts.pubs), '--subs', String(opts.subs), '--size', String(opts.size), '--window', String(opts.window), '--warmup', '3', '--duration', String(opts.duration), '--prefix', prefix];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`load generator exited ${code}: ${err}`));
      else resolve(JSON.parse(out.trim().split('\n').pop()));
    });
  });
}

async function main() {
  if (opts.build) pnpmBuild({ root, log });
  const outDir = resultDir();
  const rawDir = join(outDir, 'raw');
  const scratch = mkdtempSync(join(os.tmpdir(), 'rmqtt-bench-persistent-'));
  let redis;
  if (opts.redis) {
    if (!existsSync('/usr/bin/redis-server')) throw new Error('redis-server is missing (apt-get install redis-server), or pass --no-redis');
    mkdirSync(join(scratch, 'redis'), { recursive: true });
    redis = await startRedis(join(scratch, 'redis'));
  }
  const cases = [
    { name: 'memory', what: 'session storage off: persistent sessions in memory only', args: WITHOUT_STORAGE, env: () => ({}) },
    { name: 'lmdb', what: 'session storage on the embedded LMDB store (shipped settings)', args: [], env: (dir) => ({ RMQTT_PLUGIN_SESSION_STORAGE__STORAGE__SLED__PATH: dir }) },
    {
      name: 'lmdb-sync',
      what: 'the same with storage.sled.sync_writes = true (every batch flushed to disk)',
      args: [],
      env: (dir) => ({ RMQTT_PLUGIN_SESSION_STORAGE__STORAGE__SLED__PATH: dir, RMQTT_PLUGIN_SESSION_STORAGE__STORAGE__SLED__SYNC_WRITES: 'true' }),
    },
  ];
  if (redis !== undefined) {
    cases.push({
      name: 'redis',
      what: 'session storage on Redis 7 (appendonly, fsync every second)',
      args: [],
      env: (_dir, n) => ({ RMQTT_PLUGIN_SESSION_STORAGE__STORAGE__TYPE: 'redis', RMQTT_PLUGIN_SESSION_STORAGE__STORAGE__REDIS__URL: redis.url, RMQTT_PLUGIN_SESSION_STORAGE__STORAGE__REDIS__PREFIX: `bench-${n}` }),
    });
  }
  const records = [];
  const commands = [];
  let seq = 0;
  for (let run = 1; run <= opts.runs; run++) {
    for (const c of cases) {
      seq++;
      await waitHostIdle(20, 30);
      const dir = join(scratch, `${c.name}-${run}`);
      const env = c.env(dir, seq);
      const tag = `${c.name}-r${run}`;
      log(`${c.name} run ${run}/${opts.runs}`);
      const b = await startBroker('rmqtt-ts', { root, benchDir, rawDir, tag, extraArgs: c.args, env });
      if (run === 1) commands.push({ name: c.name, what: c.what, command: b.command });
      let r;
      try {
        r = await runLoad(b.port, `${tag}-${process.pid}`);
      } finally {
        await b.stop();
      }
      writeFileSync(join(rawDir, `${tag}.json`), `${JSON.stringify(r)}\n`);
      log(`  ${Math.round(r.recv_per_s)} msgs/s received, ${Math.round(r.acked_per_s)} acked/s, p50/p99 ${r.p50_ms}/${r.p99_ms} ms`);
      records.push({ case: c.name, run, ...r });
    }
  }
  if (redis !== undefined) await stopChild(redis.child);
  rmSync(scratch, { recursive: true, force: true });

  const rows = cases.map((c) => {
    const rs = records.filter((x) => x.case === c.name);
    return { ...c, recv: median(rs.map((x) => x.recv_per_s)), p50: median(rs.map((x) => x.p50_ms)), p99: median(rs.map((x) => x.p99_ms)), runs: rs.map((x) => Math.round(x.recv_per_s)) };
  });
  const memory = rows.find((r) => r.name === 'memory').recv;
  const lmdbFigure = rows.find((r) => r.name === 'lmdb').recv;
  const ratio = lmdbFigure / memory;
  const fmt = (n) => Math.round(n).toLocaleString('en-US');
  const cpu = os.cpus();
  const md = [
    '# Persistent sessions: QoS 1 throughput with session storage off and on',
    '',
    `${new Date().toISOString()} — ${cpu[0]?.model ?? '?'}, ${cpu.length} cores, Node ${process.version}. ${opts.runs} runs per case, interleaved; medians.`,
    '',
    `Load (bench/lib/persistent-load.mjs, MQTT 3.1.1, own process): ${opts.subs} subscribers with persistent sessions (clean session 0), each subscribed at QoS 1 to one topic and acknowledging every message; ${opts.pubs} publishers, one per topic, each keeping ${opts.window} QoS 1 messages unacknowledged; ${opts.size}-byte payloads; 3 s warm-up, ${opts.duration} s measured. With session storage on, every message is written (and its delivery completed) before the publisher's PUBACK.`,
    '',
    '| case | what | received msgs/s | vs memory | p50 / p99 ms | runs |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.name} | ${r.what} | ${fmt(r.recv)} | ${(r.recv / memory).toFixed(2)}× | ${r.p50} / ${r.p99} | ${r.runs.map(fmt).join(', ')} |`),
    '',
    '## Target',
    '',
    '| target | measured | result |',
    '| --- | --- | --- |',
    `| embedded store keeps ≥ 50% of the in-memory figure | ${fmt(lmdbFigure)} vs ${fmt(memory)} msgs/s = ${(ratio * 100).toFixed(0)}% | ${ratio >= 0.5 ? 'PASS' : '**FAIL**'} |`,
    '',
    '## Commands',
    '',
    ...commands.flatMap((c) => [`# ${c.name}: ${c.what}`, '```sh', c.command, '```']),
    '',
  ].join('\n');
  writeFileSync(join(outDir, 'report.md'), md);
  log(`report: ${relative(process.cwd(), join(outDir, 'report.md'))}`);
  process.stdout.write(md);
}

main().catch((err) => {
  log(String(err.stack ?? err));
  if (err.logTail) log(err.logTail);
  killAllChildren();
  process.exit(1);
});
