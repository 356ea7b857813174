#!/usr/bin/env node
/**
 * `pnpm bench`: rmqtt-ts next to mosquitto and aedes, measured with mqbench, the way
 * ../shared/tools/mqbench/BASELINES.md measured the two reference brokers. See README.md.
 */
import { appendFileSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BROKERS, PIN, RMQTT_PLUGIN_ENV, brokerCommand, egressToml, mosquittoBridgeConf, mosquittoConf, pinned, startBroker } from './lib/brokers.mjs';
import { CASE_NAMES, buildCases, fill, selectCases, showArgs } from './lib/cases.mjs';
import {
  TICKS_PER_S,
  busyPct,
  hostCpu,
  irqPct,
  killAllChildren,
  procTicks,
  reapedChildTicks,
  rssKb,
  shq,
  sleep,
  spawnTracked,
  stopChild,
  waitHostIdle,
} from './lib/proc.mjs';
import { ratiosSvg, reportMarkdown, summarize, targets } from './lib/report.mjs';
import { buildMqbench, ensureMosquitto, environment, pnpmBuild, stopPackagedMosquitto } from './lib/setup.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = join(benchDir, '..');

const NOISY_OTHERS_PCT = 20;
const GEN_BOUND_PCT = 90;
const MAX_ATTEMPTS = 3; // a noisy run is repeated up to 2 more times
const IDLE_BELOW_PCT = 20;
const BACKLOG_RATIO = 1.05;

const USAGE = `Usage: pnpm bench [options]

  --quick               one run per case, -d 5 for pub/sub, --hold 2, no A19k/A50k/B-long
  --runs N              runs per case and broker (default 3; --quick: 1)
  --only A,B,...        only these cases (${CASE_NAMES.join(', ')});
                        a case named here runs even with --quick
  --brokers a,b         only these brokers (${BROKERS.join(', ')})
  --no-long             skip B-long (10 minutes)
  --long-seconds S      B-long's measured duration (default 600)
  --no-build            measure the existing dist/ (no pnpm build)
  --idle-timeout S      longest wait for a quiet host before each run (default 30)
  --pin                 broker on CPU 0, mqbench and helpers on CPU 1 (taskset)
  -h, --help            this help
`;

function log(msg) {
  process.stderr.write(`[bench] ${msg}\n`);
}

function parseOptions(argv) {
  const o = { argv, quick: false, runs: undefined, only: undefined, brokers: [...BROKERS], noLong: false, noBuild: false, longSeconds: 600, idleTimeout: 30, pin: false };
  const list = (v, flag) => {
    if (!v || v.startsWith('-')) throw new Error(`${flag} needs a comma-separated list`);
    return v.split(',').map((s) => s.trim()).filter(Boolean);
  };
  const num = (v, flag, min = 1) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${flag} needs an integer ≥ ${min}, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--':
        break;
      case '--quick':
        o.quick = true;
        break;
      case '--runs':
        o.runs = num(value(), flag);
        break;
      case '--only':
        o.only = list(value(), flag);
        break;
      case '--brokers': {
        o.brokers = list(value(), flag);
        const bad = o.brokers.filter((b) => !BROKERS.includes(b));
        if (bad.length) throw new Error(`--brokers: unknown broker ${bad.join(', ')} (brokers: ${BROKERS.join(', ')})`);
        break;
      }
      case '--no-long':
        o.noLong = true;
        break;
      case '--no-build':
        o.noBuild = true;
        break;
      case '--pin':
        o.pin = true;
        break;
      case '--long-seconds':
        o.longSeconds = num(value(), flag, 10);
        break;
      case '--idle-timeout':
        o.idleTimeout = num(value(), flag, 0);
        break;
      case '-h':
      case '--help':
        process.stdout.write(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  o.runs ??= o.quick ? 1 : 3;
  return o;
}

/** Simple `key = value` lines of a TOML file (dotted keys, as both config files use). */
function tomlKeys(file) {
  const out = new Map();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*([A-Za-z0-9_.-]+)\s*=\s*(.+?)\s*$/.exec(line);
    if (m) out.set(m[1], m[2]);
  }
  return out;
}

function resultsDir() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, '0');
  const base = join(benchDir, 'results', `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`);
  let dir = base;
  for (let n = 2; existsSync(dir); n++) dir = `${base}-${n}`;
  mkdirSync(join(dir, 'raw'), { recursive: true });
  return dir;
}

function tailOf(text, lines = 15) {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

function readText(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------------------------------------------
// Interrupts: every child is killed, a partial report is written.

let interrupted = false;
function onSignal(sig) {
  if (interrupted) {
    killAllChildren('SIGKILL');
    process.exit(130);
  }
  interrupted = true;
  log(`${sig}: stopping every broker and mqbench (again to quit at once)`);
  killAllChildren('SIGTERM');
  setTimeout(() => killAllChildren('SIGKILL'), 3000).unref();
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => onSignal(sig));
process.on('exit', () => killAllChildren('SIGKILL'));

// ---------------------------------------------------------------------------------------------------

/**
 * Runs mqbench once against a running broker. Output goes to files in raw/. Also measures, from /proc,
 * the host's busy %, the broker's and mqbench's CPU over the whole run (mqbench's own conn RESULT has no
 * others_cpu_pct), and optionally samples the broker's VmRSS every 10 s.
 */
async function runMqbench(mqbench, args, { rawDir, name, brokerPid, sampleRss = false }) {
  const outFile = join(rawDir, `${name}.out`);
  const errFile = join(rawDir, `${name}.err`);
  const outFd = openSync(outFile, 'w');
  const errFd = openSync(errFile, 'w');
  const h0 = hostCpu();
  const b0 = procTicks(brokerPid);
  const c0 = reapedChildTicks();
  const t0 = process.hrtime.bigint();
  const [cmd, argv] = pinned(PIN.generator, mqbench, args);
  const child = spawnTracked(cmd, argv, { stdio: ['ignore', outFd, errFd] });
  closeSync(outFd);
  closeSync(errFd);
  const samples = [];
  let timer;
  if (sampleRss) {
    let k = 0;
    const start = Date.now();
    const tick = () => {
      k += 1;
      samples.push({ t: k * 10, rss_kb: rssKb(brokerPid) });
      timer = setTimeout(tick, Math.max(0, start + (k + 1) * 10000 - Date.now()));
    };
    timer = setTimeout(tick, 10000);
  }
  const r = await child.done;
  clearTimeout(timer);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  const h1 = hostCpu();
  const c1 = reapedChildTicks(); // mqbench (and its --procs workers) has been reaped by now
  const b1 = procTicks(brokerPid); // the broker is stopped only after this
  const stdout = readText(outFile);
  const stderr = readText(errFile);
  const line = stdout
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('RESULT '));
  let result;
  if (line) {
    try {
      result = JSON.parse(line.slice(7));
    } catch {
      result = undefined;
    }
  }
  const ncpu = os.availableParallelism?.() ?? os.cpus().length;
  const gen = (100 * (c1 - c0)) / TICKS_PER_S / dt;
  const broker = b0 >= 0 && b1 >= 0 ? (100 * (b1 - b0)) / TICKS_PER_S / dt : undefined;
  const host = busyPct(h0, h1);
  const others = Math.max(0, (host * ncpu) - (broker ?? 0) - gen);
  return {
    rc: r.code,
    signal: r.signal,
    error: r.error?.message,
    result,
    resultLine: line,
    stdoutTail: tailOf(stdout),
    stderrTail: tailOf(stderr),
    harness: { wall_s: dt, host_busy_pct: host, host_irq_pct: irqPct(h0, h1), broker_cpu_pct: broker, gen_cpu_pct: gen, others_cpu_pct: others },
    samples,
  };
}

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.pin) {
    PIN.broker = 0;
    PIN.generator = 1;
  }
  if (selectCases(buildCases(opts), opts).length === 0) throw new Error('no case selected');
  const notes = [];

  // 1. mqbench
  const mqbench = buildMqbench({ root, benchDir, log });
  // 2. mosquitto, the packaged service stopped, the repo built
  let brokers = [...opts.brokers];
  if (brokers.includes('mosquitto') && !ensureMosquitto({ log })) {
    notes.push('mosquitto could not be installed: its runs were skipped');
    brokers = brokers.filter((b) => b !== 'mosquitto');
  }
  stopPackagedMosquitto();
  if (brokers.includes('aedes') && !existsSync(join(benchDir, 'node_modules', 'aedes'))) {
    notes.push('aedes is not installed (run `pnpm install`): its runs were skipped');
    brokers = brokers.filter((b) => b !== 'aedes');
  }
  if (brokers.includes('rmqtt-ts')) {
    if (opts.noBuild) notes.push('--no-build: the existing apps/rmqtt/dist was measured');
    else pnpmBuild({ root, log });
    if (!existsSync(join(root, 'apps/rmqtt/dist/cli.js'))) throw new Error('apps/rmqtt/dist/cli.js is missing: run pnpm build');
  }
  const selected = selectCases(buildCases(opts), { ...opts, brokers });
  if (opts.pin) notes.push('--pin: every measured broker ran on CPU 0 (taskset -c 0); mqbench, the auth server and the egress remote on CPU 1');

  const outDir = resultsDir();
  const rawDir = join(outDir, 'raw');
  const jsonl = join(rawDir, 'results.jsonl');
  writeFileSync(jsonl, '');
  const env = environment({ benchDir, mqbench });
  const started = new Date();
  log(`results in ${relative(process.cwd(), outDir) || outDir}`);
  log(`${env.cpu}, ${env.nproc} cores, ${env.kernel}, Node ${env.node}, mosquitto ${env.mosquitto}, aedes ${env.aedes}, mqbench ${env.mqbench}`);

  const shipped = tomlKeys(join(root, 'configs/rmqtt.toml'));
  const overrides = [...tomlKeys(join(benchDir, 'rmqtt-bench.toml'))].map(([key, value]) => ({ key, value, shipped: shipped.get(key) }));
  const shippedHttpApi = tomlKeys(join(root, 'configs/plugins/rmqtt-http-api.toml'));
  for (const [variable, value] of Object.entries(RMQTT_PLUGIN_ENV)) {
    const key = variable.replace(/^RMQTT_PLUGIN_HTTP_API__/, '').toLowerCase();
    overrides.push({ key: `${key} (rmqtt-http-api, environment ${variable})`, value: JSON.stringify(value), shipped: shippedHttpApi.get(key) });
  }
  const commands = {
    brokers: [
      ...(brokers.includes('rmqtt-ts')
        ? [
            { label: 'rmqtt-ts (port read from its "listening" log line)', command: `cd ${shq(root)} && ${brokerCommand('rmqtt-ts', { root, benchDir }).shell}` },
            ...(selected.some((c) => c.brokerArgs)
              ? [{ label: 'rmqtt-ts without plugins (B-noplugins)', command: `cd ${shq(root)} && ${brokerCommand('rmqtt-ts', { root, benchDir, extraArgs: ['--plugins-default-startups'] }).shell}` }]
              : []),
            ...(selected.some((c) => c.authHttp)
              ? [
                  {
                    label: 'rmqtt-ts with acl and auth-http (B-auth): raw/b-auth.toml sets plugins.dir to raw/plugins-b-auth/ (configs/plugins/ with auth-http asking bench/auth-server.mjs) and the plugins to start',
                    command: `cd ${shq(root)} && ${brokerCommand('rmqtt-ts', { root, benchDir, extraArgs: ['-f', 'raw/b-auth.toml'] }).shell}`,
                  },
                ]
              : []),
          ]
        : []),
      ...(brokers.includes('mosquitto') ? [{ label: 'mosquitto (<conf> is raw/<case>-mosquitto-r<n>.mosquitto.conf, below)', command: `cd ${shq(benchDir)} && ${brokerCommand('mosquitto', { root, benchDir, confPath: '<conf>' }).shell}` }] : []),
      ...(brokers.includes('aedes') ? [{ label: 'aedes', command: `cd ${shq(benchDir)} && ${brokerCommand('aedes', { root, benchDir, port: '$PORT' }).shell}` }] : []),
    ],
    mosquittoConf: mosquittoConf('<port>'),
    cases: selected.flatMap((c) => [
      { name: c.name, title: c.title, command: showArgs(c.args) },
      ...(c.serveCheck ? [{ name: `${c.name} (then, same broker)`, title: 'does it still serve?', command: showArgs(c.serveCheck) }] : []),
    ]),
  };

  const records = [];
  const save = (rec) => appendFileSync(jsonl, `${JSON.stringify(rec)}\n`);

  /**
   * B-auth: an auth server (started once, stopped at the end) and a config layered on the bench's that
   * points plugins.dir at a copy of configs/plugins/ whose rmqtt-auth-http.toml asks that server.
   */
  let authArgs;
  let authServer;
  async function authHttpArgs() {
    if (authArgs !== undefined) return authArgs;
    const [cmd, argv] = pinned(PIN.generator, process.execPath, [join(benchDir, 'auth-server.mjs')]);
    const server = spawnTracked(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise((resolve, reject) => {
      let out = '';
      server.stdout.on('data', (d) => {
        out += d.toString();
        if (out.includes('\n')) resolve(Number(out.trim()));
      });
      server.once('exit', () => reject(new Error('auth server exited')));
    });
    authServer = server;
    const dir = join(rawDir, 'plugins-b-auth');
    mkdirSync(dir, { recursive: true });
    for (const f of readdirSync(join(root, 'configs/plugins'))) copyFileSync(join(root, 'configs/plugins', f), join(dir, f));
    const auth = readFileSync(join(root, 'configs/plugins/rmqtt-auth-http.toml'), 'utf8').replaceAll('http://127.0.0.1:9090/', `http://127.0.0.1:${port}/`);
    writeFileSync(join(dir, 'rmqtt-auth-http.toml'), auth);
    const conf = join(rawDir, 'b-auth.toml');
    writeFileSync(conf, `plugins.dir = ${JSON.stringify(dir)}\nplugins.default_startups = ["rmqtt-acl", "rmqtt-auth-http", "rmqtt-retainer", "rmqtt-shared-subscription", "rmqtt-http-api"]\n`);
    authArgs = ['-f', conf];
    return authArgs;
  }

  /** The egress cases' remote: one mosquitto for the whole run (stopped at the end). */
  let remote;
  async function remoteBroker() {
    if (remote === undefined || !remote.alive()) remote = await startBroker('mosquitto', { root, benchDir, rawDir, tag: 'remote', cpu: PIN.generator });
    return remote;
  }

  /** The plugins rmqtt-ts starts in configs/rmqtt.toml (its uncommented default_startups). */
  function shippedStartups() {
    const text = readFileSync(join(root, 'configs/rmqtt.toml'), 'utf8');
    const m = /^plugins\.default_startups\s*=\s*\[([\s\S]*?)\]/m.exec(text);
    if (!m) throw new Error('configs/rmqtt.toml has no plugins.default_startups');
    return m[1].split('\n').map((l) => l.trim()).filter((l) => l.startsWith('"')).map((l) => JSON.parse(l.replace(/,$/, '')));
  }

  /** Egress cases, rmqtt-ts: a config layered on the bench's that adds the egress bridge to the remote. */
  function egressArgs(remotePort) {
    const dir = join(rawDir, 'plugins-egress');
    mkdirSync(dir, { recursive: true });
    for (const f of readdirSync(join(root, 'configs/plugins'))) copyFileSync(join(root, 'configs/plugins', f), join(dir, f));
    writeFileSync(join(dir, 'rmqtt-bridge-egress-mqtt.toml'), egressToml(remotePort));
    const conf = join(rawDir, 'egress.toml');
    writeFileSync(conf, `plugins.dir = ${JSON.stringify(dir)}\nplugins.default_startups = ${JSON.stringify([...shippedStartups(), 'rmqtt-bridge-egress-mqtt'])}\n`);
    return ['-f', conf];
  }

  /**
   * An egress run: the remote's subscribers first (their mqbench measures delivery and latency), a second
   * later the publishers on the measured broker (offered rate, the broker's CPU and memory).
   */
  async function runEgress(kase, b, tag, rem) {
    const subArgs = fill(kase.subArgs, { sink: rem.port, pid: rem.pid });
    const pubArgs = fill(kase.args, { port: b.port, pid: b.pid });
    const subRun = runMqbench(mqbench, subArgs, { rawDir, name: `${tag}.mqbench-remote`, brokerPid: rem.pid });
    await sleep(1000);
    const pub = await runMqbench(mqbench, pubArgs, { rawDir, name: `${tag}.mqbench`, brokerPid: b.pid });
    const sub = await subRun;
    const failed = [pub, sub].find((m) => m.error || m.rc !== 0 || !m.result);
    const result =
      pub.result && sub.result
        ? {
            ...sub.result,
            pub_per_s: pub.result.pub_per_s,
            expected_recv_per_s: pub.result.pub_per_s,
            published: pub.result.published,
            lost: undefined,
            broker_pid: b.pid,
            broker_cpu_pct: pub.result.broker_cpu_pct,
            broker_rss_kb: pub.result.broker_rss_kb,
            remote_cpu_pct: sub.result.broker_cpu_pct,
            // each mqbench is one process on one core: the busier one says whether the generator bounded the run
            gen_cpu_pct: Math.max(pub.result.gen_cpu_pct ?? 0, sub.result.gen_cpu_pct ?? 0),
          }
        : undefined;
    return {
      rc: failed?.rc ?? 0,
      signal: failed?.signal,
      error: failed?.error,
      result,
      resultLine: result ? `RESULT ${JSON.stringify(result)}` : undefined,
      stdoutTail: `${pub.stdoutTail}\n--- remote subscribers ---\n${sub.stdoutTail}`,
      stderrTail: `${pub.stderrTail}\n--- remote subscribers ---\n${sub.stderrTail}`,
      harness: pub.harness,
      samples: [],
    };
  }

  async function attempt(kase, broker, run, att) {
    const tag = `${kase.name}-${broker}-r${run}${att > 1 ? `-a${att}` : ''}`;
    const rec = { case: kase.name, broker, run, attempt: att, tag, status: 'ok', flags: [] };
    const idle = await waitHostIdle(IDLE_BELOW_PCT, opts.idleTimeout, () => interrupted);
    rec.idle = idle;
    if (idle.gave_up) rec.flags.push('busy-start');
    if (interrupted) return Object.assign(rec, { status: 'interrupted', reason: 'interrupted' });
    let b;
    const rem = kase.kind === 'egress' ? await remoteBroker() : undefined;
    for (let tries = 1; ; tries++) {
      try {
        const extraArgs = kase.authHttp ? await authHttpArgs() : rem !== undefined && broker === 'rmqtt-ts' ? egressArgs(rem.port) : (kase.brokerArgs ?? []);
        const mosquittoExtra = rem !== undefined && broker === 'mosquitto' ? mosquittoBridgeConf(rem.port, kase.egressQos) : '';
        b = await startBroker(broker, { root, benchDir, rawDir, tag, extraArgs, mosquittoExtra });
        break;
      } catch (err) {
        if (tries < 2 && !interrupted) {
          log(`${tag}: ${err.message}; trying once more`);
          continue;
        }
        return Object.assign(rec, { status: 'failed', reason: `broker start: ${err.message}`, brokerLogTail: err.logTail });
      }
    }
    rec.port = b.port;
    rec.pid = b.pid;
    rec.brokerCommand = b.command;
    try {
      await sleep(300);
      const args = fill(kase.args, { port: b.port, pid: b.pid });
      rec.command = `${mqbench} ${args.join(' ')}`;
      if (rem !== undefined) {
        // the bridge connects after the broker is up
        await sleep(1500);
        rec.command = `${mqbench} ${fill(kase.subArgs, { sink: rem.port, pid: rem.pid }).join(' ')} & sleep 1; ${rec.command}`;
      }
      const m = rem !== undefined ? await runEgress(kase, b, tag, rem) : await runMqbench(mqbench, args, { rawDir, name: `${tag}.mqbench`, brokerPid: b.pid, sampleRss: !!kase.long });
      const alive = b.alive();
      Object.assign(rec, { rc: m.rc, signal: m.signal, result: m.result, harness: m.harness, stdoutTail: m.stdoutTail, stderrTail: m.stderrTail });
      if (m.result) appendFileSync(join(rawDir, 'RESULT.lines'), `${tag} ${m.resultLine}\n`);
      const res = m.result;
      rec.others_cpu_pct = res?.others_cpu_pct ?? m.harness.others_cpu_pct;
      rec.gen_cpu_pct = res?.gen_cpu_pct ?? res?.gen_cpu_connect_pct ?? m.harness.gen_cpu_pct;
      rec.broker_cpu_pct = res?.broker_cpu_pct ?? res?.broker_cpu_connect_pct ?? m.harness.broker_cpu_pct;
      if (interrupted) Object.assign(rec, { status: 'interrupted', reason: 'interrupted' });
      else if (!alive) Object.assign(rec, { status: 'failed', reason: `broker died during the run (exit ${b.child.exitCode}, signal ${b.child.signalCode})` });
      else if (m.error) Object.assign(rec, { status: 'failed', reason: `mqbench: ${m.error}` });
      else if (m.rc !== 0) Object.assign(rec, { status: 'failed', reason: `mqbench exit ${m.rc ?? m.signal}${res ? '' : ', no RESULT line'}` });
      else if (!res) Object.assign(rec, { status: 'failed', reason: 'no RESULT line' });
      if (rem !== undefined) rec.others_cpu_pct = undefined; // the remote and the second mqbench are part of the case
      if (rec.status === 'ok') {
        if (rec.others_cpu_pct > NOISY_OTHERS_PCT) rec.flags.push('noisy');
        if (rec.gen_cpu_pct > GEN_BOUND_PCT) rec.flags.push('gen-bound');
        // published (x fan-out) faster than delivered: the broker's queues grew during the window
        if (res.mode === 'pubsub' && res.expected_recv_per_s > BACKLOG_RATIO * res.recv_per_s) rec.flags.push('backlog');
      }
      if (kase.long) {
        const dur = opts.longSeconds;
        const earlyT = Math.max(10, Math.round(dur / 100) * 10);
        const within = m.samples.filter((s) => s.rss_kb > 0 && s.t <= dur + 2);
        rec.long = {
          duration_s: dur,
          samples: m.samples,
          early: within.find((s) => s.t >= earlyT),
          late: within.at(-1),
        };
      }
      if (kase.serveCheck && rec.status === 'ok') {
        const sargs = fill(kase.serveCheck, { port: b.port, pid: b.pid });
        const s = await runMqbench(mqbench, sargs, { rawDir, name: `${tag}.serve`, brokerPid: b.pid });
        const sr = s.result;
        const ok = s.rc === 0 && !!sr && sr.received > 0 && sr.lost === 0 && b.alive();
        rec.serve = {
          ok,
          command: `${mqbench} ${sargs.join(' ')}`,
          received: sr?.received,
          lost: sr?.lost,
          rc: s.rc,
          reason: ok ? undefined : !b.alive() ? 'broker died' : s.rc !== 0 ? `mqbench exit ${s.rc}` : !sr ? 'no RESULT line' : `received ${sr.received}, lost ${sr.lost}`,
          tail: ok ? undefined : `${s.stderrTail}\n${s.stdoutTail}`.trim(),
        };
        if (sr) appendFileSync(join(rawDir, 'RESULT.lines'), `${tag}.serve ${s.resultLine}\n`);
      }
    } finally {
      await b.stop(5000);
    }
    if (rec.status !== 'ok' || rec.serve?.ok === false) rec.brokerLogTail = b.logTail(20);
    return rec;
  }

  function describe(kase, rec) {
    const r = rec.result;
    let main = '';
    if (r && kase.kind === 'conn') main = `${Math.round(r.conn_per_s)} conn/s, ${r.connected}/${r.clients} connected, handshake p50/p99 ${r.handshake_ms?.p50}/${r.handshake_ms?.p99} ms, ${r.broker_kb_per_conn} KB/conn`;
    else if (r) main = `${Math.round(r.recv_per_s)} msgs/s, lost ${r.lost}, p50/p99 ${(r.latency_us?.p50 / 1000).toFixed(1)}/${(r.latency_us?.p99 / 1000).toFixed(1)} ms, broker ${r.broker_cpu_pct}% cpu`;
    const load = rec.others_cpu_pct !== undefined ? `, others ${Math.round(rec.others_cpu_pct)}%, mqbench ${Math.round(rec.gen_cpu_pct)}%` : '';
    const serve = rec.serve ? `, still serves: ${rec.serve.ok ? 'yes' : `NO (${rec.serve.reason})`}` : '';
    const long = rec.long ? `, RSS ${rec.long.early?.rss_kb} KB at ${rec.long.early?.t} s -> ${rec.long.late?.rss_kb} KB at ${rec.long.late?.t} s` : '';
    const status = rec.status === 'ok' ? (rec.flags.length ? ` [${rec.flags.join(', ')}]` : '') : ` ${rec.status.toUpperCase()}: ${rec.reason}`;
    return `${main}${load}${serve}${long}${status}`.replace(/^, /, '');
  }

  // Interleave: within a group (B and B-noplugins share one), run 1 of every (case, broker), then run 2, ...
  const groups = [];
  for (const c of selected) {
    const key = c.group ?? c.name;
    let g = groups.find((x) => x.key === key);
    if (!g) groups.push((g = { key, pairs: [] }));
    for (const b of c.brokers) g.pairs.push({ kase: c, broker: b });
  }
  outer: for (const g of groups) {
    const maxRuns = Math.max(...g.pairs.map((p) => p.kase.runs ?? opts.runs));
    for (let run = 1; run <= maxRuns; run++) {
      for (const { kase, broker } of g.pairs) {
        const runs = kase.runs ?? opts.runs;
        if (run > runs) continue;
        const tries = [];
        if (interrupted) break outer;
        for (let att = 1; att <= MAX_ATTEMPTS; att++) {
          log(`${kase.name} run ${run}/${runs} ${broker}${att > 1 ? ` (attempt ${att}, the last was noisy)` : ''}`);
          const rec = await attempt(kase, broker, run, att);
          tries.push(rec);
          records.push(rec);
          log(`  ${describe(kase, rec)}`);
          const noisy = rec.status === 'ok' && rec.flags.includes('noisy');
          if (!noisy || kase.long || interrupted) break;
        }
        // all attempts noisy: keep the least noisy one (flagged)
        const ok = tries.filter((t) => t.status === 'ok');
        if (ok.length === tries.length && tries.length > 1) {
          const keep = ok.every((t) => t.flags.includes('noisy')) ? ok.reduce((a, b) => (b.others_cpu_pct < a.others_cpu_pct ? b : a)) : tries.at(-1);
          for (const t of tries) if (t !== keep) t.superseded = true;
        } else {
          for (const t of tries.slice(0, -1)) t.superseded = true;
        }
        for (const t of tries) save(t);
        if (interrupted) break outer;
      }
    }
  }

  if (authServer !== undefined) await stopChild(authServer, 2000);
  if (remote !== undefined) await remote.stop(2000);
  const finished = new Date();
  const rows = summarize(selected, records.filter((r) => r.status !== 'interrupted'));
  const targetRows = targets(rows, opts);
  if (records.some((r) => r.flags.includes('busy-start'))) notes.push(`some runs started on a host still ≥ ${IDLE_BELOW_PCT}% busy after ${opts.idleTimeout} s of waiting ("busy start" below)`);
  const md = reportMarkdown({ env, opts, started, finished, overrides, commands, cases: selected, rows, targetRows, records, interrupted, notes });
  writeFileSync(join(outDir, 'report.md'), md);
  writeFileSync(join(outDir, 'ratios.svg'), ratiosSvg(rows, selected));
  for (const t of targetRows) if (t.result !== 'not run') log(`target ${t.result.padEnd(4)} ${t.target}: ${t.value}`);
  process.stdout.write(`${join(outDir, 'report.md')}\n`);
  if (interrupted) process.exit(130);
}

main().catch((err) => {
  log(`error: ${err.message}`);
  killAllChildren('SIGKILL');
  process.exit(1);
});
