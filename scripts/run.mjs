#!/usr/bin/env node
/**
 * The two commands of the README, runnable on a fresh machine with only Node.js 20 and npm:
 *   npm start  — install, build, start the broker with configs/rmqtt.toml
 *   npm test   — install, build, install the system packages the tests talk to, run every test,
 *                and end with "N passed, N failed" read from vitest's JSON report
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { has, installDebianPackages as installDebian } from './debian.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PNPM_VERSION = '10.34.9';
/** Debian packages the tests start (real peers, never mocks). */
const DEBIAN_PACKAGES = ['mosquitto', 'mosquitto-clients', 'openssl', 'iproute2', 'redis-server', 'redis-tools'];
const DEBIAN_BINARIES = { mosquitto: '/usr/sbin/mosquitto', 'mosquitto-clients': '/usr/bin/mosquitto_pub', openssl: '/usr/bin/openssl', iproute2: '/usr/bin/ss', 'redis-server': '/usr/bin/redis-server', 'redis-tools': '/usr/bin/redis-cli' };

function log(msg) {
  process.stderr.write(`[rmqtt-ts] ${msg}\n`);
}

/** pnpm from the PATH when it is the pinned major, else through npx (no global install needed). */
function pnpm(args, opts = {}) {
  const direct = has('pnpm') && spawnSync('pnpm', ['--version'], { encoding: 'utf8' }).stdout?.startsWith('10.');
  const [cmd, pre] = direct ? ['pnpm', []] : ['npx', ['--yes', `pnpm@${PNPM_VERSION}`]];
  const r = spawnSync(cmd, [...pre, ...args], { cwd: root, stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    log(`pnpm ${args.join(' ')} failed (exit ${r.status})`);
    process.exit(r.status ?? 1);
  }
}

function installAndBuild() {
  if (!existsSync(join(root, 'node_modules', '.modules.yaml'))) {
    log('installing dependencies');
    pnpm(['install', '--frozen-lockfile']);
  } else {
    pnpm(['install', '--frozen-lockfile', '--reporter=silent']);
  }
  log('building packages');
  pnpm(['build']);
}

function installDebianPackages() {
  installDebian(DEBIAN_PACKAGES, DEBIAN_BINARIES, { log, usedBy: 'tests' });
}

function summary(reportFile) {
  if (!existsSync(reportFile)) return 'no test report was written';
  const r = JSON.parse(readFileSync(reportFile, 'utf8'));
  const passed = r.numPassedTests ?? 0;
  // a file that failed without a failed test (it could not load, or a beforeAll hook failed and its
  // tests were skipped) counts as one failure
  const failed = (r.numFailedTests ?? 0) + (r.testResults ?? []).filter((f) => f.status === 'failed' && !(f.assertionResults ?? []).some((a) => a.status === 'failed')).length;
  return `${passed} passed, ${failed} failed`;
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'start') {
  installAndBuild();
  const args = rest.length > 0 ? rest : ['-f', 'configs/rmqtt.toml'];
  // run the command itself: its first line carries the Node.js flags the broker runs with
  const child = spawn(join(root, 'apps/rmqtt/dist/cli.js'), args, { cwd: root, stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else if (command === 'test') {
  installAndBuild();
  installDebianPackages();
  const reportFile = join(root, '.vitest-report.json');
  rmSync(reportFile, { force: true });
  const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
  const r = spawnSync(process.execPath, [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${reportFile}`, ...rest], { cwd: root, stdio: 'inherit' });
  process.stdout.write(`${summary(reportFile)}\n`);
  process.exit(r.status ?? 1);
} else {
  log('usage: node scripts/run.mjs start [broker args] | test [vitest args]');
  process.exit(64);
}
