/**
 * Debian packages installed with apt-get when they are missing. Shared by scripts/run.mjs (the system
 * packages the tests talk to) and bench/ (mosquitto, the reference broker).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Whether a command is on the PATH. */
export function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Installs those of `packages` whose marker file is missing.
 * @param {string[]} packages Debian package names
 * @param {Record<string, string>} binaries package name -> a file it installs (present = installed)
 * @param {{ log?: (msg: string) => void, usedBy?: string }} [opts] `usedBy` names what fails without them
 *   ("tests" -> "tests that use them will fail")
 * @returns {string[]} the packages still missing afterwards
 */
export function installDebianPackages(packages, binaries, { log = (msg) => process.stderr.write(`${msg}\n`), usedBy = 'commands' } = {}) {
  const stillMissing = () => packages.filter((p) => !existsSync(binaries[p]));
  const missing = stillMissing();
  if (missing.length === 0) return [];
  const root_ = process.getuid?.() === 0;
  const sudo = root_ ? [] : has('sudo') ? ['sudo', '-n'] : null;
  if (sudo === null || !has('apt-get')) {
    log(`cannot install ${missing.join(', ')} (needs apt-get as root); ${usedBy} that use them will fail`);
    return missing;
  }
  log(`installing ${missing.join(', ')}`);
  const run = (args) => spawnSync(sudo[0] ?? args[0], sudo.length ? [...sudo.slice(1), ...args] : args.slice(1), { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  run(['apt-get', 'update', '-qq']);
  const r = run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...missing]);
  if (r.status !== 0) log(`apt-get install failed (exit ${r.status}); ${usedBy} that use ${missing.join(', ')} will fail`);
  return stillMissing();
}
