/**
 * Once before all test files: Debian's mosquitto package may have started its own service on 1883 when
 * it was installed; tests start their own mosquitto on free ports, so the packaged one is stopped.
 */
import { execFileSync, spawnSync } from 'node:child_process';

function stopPackagedMosquitto(): void {
  spawnSync('service', ['mosquitto', 'stop'], { stdio: 'ignore' });
  let pids: string[] = [];
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

export default function setup(): void {
  stopPackagedMosquitto();
}
