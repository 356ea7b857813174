/**
 * Before the runs: build mqbench, make sure mosquitto is installed and the packaged service is not
 * running, build the repo, and collect the environment for the report.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { has, installDebianPackages } from '../../scripts/debian.mjs';
import { brokerVersions } from './brokers.mjs';

/** Builds mqbench from $MQBENCH_DIR or <repo>/../shared/tools/mqbench into bench/.build/. Returns its path. */
export function buildMqbench({ root, benchDir, log }) {
  const src = resolve(process.env.MQBENCH_DIR ?? join(root, '..', 'shared', 'tools', 'mqbench'));
  const build = join(benchDir, '.build');
  for (const f of ['mqbench.c', 'Makefile']) {
    if (!existsSync(join(src, f))) throw new Error(`mqbench source not found: ${join(src, f)} (set MQBENCH_DIR)`);
  }
  mkdirSync(build, { recursive: true });
  for (const f of ['mqbench.c', 'Makefile']) {
    const from = join(src, f);
    const to = join(build, f);
    // copy only when changed, so make's timestamps skip an unneeded rebuild
    if (!existsSync(to) || !readFileSync(from).equals(readFileSync(to))) copyFileSync(from, to);
  }
  log(`building mqbench from ${src}`);
  const r = spawnSync('make', ['-s'], { cwd: build, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make failed in ${build} (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  return join(build, 'mqbench');
}

/** mosquitto from Debian; false when it could not be installed. */
export function ensureMosquitto({ log }) {
  const missing = installDebianPackages(['mosquitto'], { mosquitto: '/usr/sbin/mosquitto' }, { log, usedBy: 'bench runs' });
  return missing.length === 0;
}

/** Debian's mosquitto package may have started its own service on 1883; stop it (as test/global-setup.ts does). */
export function stopPackagedMosquitto() {
  spawnSync('service', ['mosquitto', 'stop'], { stdio: 'ignore' });
  let pids = [];
  try {
    pids = execFileSync('pgrep', ['-f', '^/usr/sbin/mosquitto -c /etc/mosquitto/mosquitto.conf'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return; // none running
  }
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

/**
 * `pnpm build` at the repo root, with scripts/run.mjs's pnpm logic: pnpm from the PATH when it is the
 * pinned major, else through npx at the pinned version (root package.json "packageManager").
 */
export function pnpmBuild({ root, log }) {
  const pinned = /pnpm@([\d.]+)/.exec(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager ?? '')?.[1] ?? '10';
  const major = `${pinned.split('.')[0]}.`;
  const direct = has('pnpm') && spawnSync('pnpm', ['--version'], { encoding: 'utf8' }).stdout?.startsWith(major);
  const [cmd, pre] = direct ? ['pnpm', []] : ['npx', ['--yes', `pnpm@${pinned}`]];
  log('building packages (pnpm build)');
  // stdout of the build goes to our stderr, so that stdout stays the report path and the progress lines
  const r = spawnSync(cmd, [...pre, 'build'], { cwd: root, stdio: ['ignore', 2, 2] });
  if (r.status !== 0) throw new Error(`pnpm build failed (exit ${r.status}); fix the build or pass --no-build to measure the existing dist/`);
}

function mqbenchVersion(mqbench) {
  const r = spawnSync(mqbench, ['--help'], { encoding: 'utf8' });
  return /^mqbench (\S+)/.exec(r.stdout ?? '')?.[1] ?? '?';
}

export function environment({ benchDir, mqbench }) {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const fdHard = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim();
  const mem = Math.round(os.totalmem() / 2 ** 30);
  return {
    cpu: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? '?',
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    memory: `${mem} GiB`,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    ...brokerVersions({ benchDir, spawnSync }),
    mqbench: mqbenchVersion(mqbench),
    nofile: fdHard,
  };
}
