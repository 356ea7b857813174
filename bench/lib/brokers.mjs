/**
 * The three brokers, each started fresh for every run on a free loopback port with the descriptor limit
 * raised (`sh -c 'ulimit -n 20000; exec …'`, so the shell's pid becomes the broker's pid).
 */
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, portAccepts, shq, sleep, spawnTracked, stopChild } from './proc.mjs';

export const BROKERS = ['rmqtt-ts', 'mosquitto', 'aedes'];

/** mosquitto-bench.conf of BASELINES.md, on the given port. */
export function mosquittoConf(port) {
  return `listener ${port} 127.0.0.1
allow_anonymous true
max_queued_messages 100000
persistence false
log_dest none
`;
}

/**
 * The bridge section of the mosquitto measured in the egress cases: bench/# out to the remote at `qos`
 * (mosquitto's own bridge, as rmqtt-ts's egress bridge is configured in egressToml).
 */
export function mosquittoBridgeConf(remotePort, qos) {
  return `connection egress
address 127.0.0.1:${remotePort}
topic bench/# out ${qos}
cleansession true
try_private false
start_type automatic
restart_timeout 1
`;
}

/** rmqtt-bridge-egress-mqtt.toml of the egress cases: bench/# to the remote, the message's own QoS. */
export function egressToml(remotePort) {
  return `[[bridges]]
enable = true
name = "bench"
client_id_prefix = "bench"
server = "tcp://127.0.0.1:${remotePort}"
concurrent_client_limit = 1
reconnect_interval = "1s"
mqtt_ver = "v4"

[[bridges.entries]]
local.topic_filter = "bench/#"
remote.topic = "\${local.topic}"
`;
}

const RMQTT_CONFIG_ARGS = ['-f', 'configs/rmqtt.toml', '-f', 'bench/rmqtt-bench.toml'];

/**
 * Plugin settings the bench changes, as environment variables (a plugin's config file lives in
 * configs/plugins/, which the bench leaves as shipped): only addresses, so that the HTTP API of every
 * broker run gets a free loopback port.
 */
export const RMQTT_PLUGIN_ENV = { RMQTT_PLUGIN_HTTP_API__HTTP_LADDR: '127.0.0.1:0' };

/**
 * The command of a broker: { cwd, argv (exec'd by sh), shell (the full sh -c line) }.
 * `port` is a placeholder for display when not known; `extraArgs` are appended (rmqtt-ts only).
 */
/**
 * CPU pinning (`--pin`): the measured broker on one core, mqbench (and the helpers: the auth server, the
 * egress cases' remote) on the other, so neither is scheduled onto the other's core. Off by default.
 */
export const PIN = { broker: undefined, generator: undefined };

/** `[cmd, args]` run on `cpu` with taskset, or unchanged when `cpu` is undefined. */
export function pinned(cpu, cmd, args) {
  return cpu === undefined ? [cmd, args] : ['taskset', ['-c', String(cpu), cmd, ...args]];
}

export function brokerCommand(name, { root, benchDir, port = '<port>', confPath = '<conf>', extraArgs = [], env: extraEnv = {}, cpu = PIN.broker }) {
  let argv;
  let cwd;
  if (name === 'rmqtt-ts') {
    // the command as installed: its first line carries the Node.js flags the broker runs with
    argv = [join(root, 'apps/rmqtt/dist/cli.js'), ...RMQTT_CONFIG_ARGS, ...extraArgs];
    cwd = root;
  } else if (name === 'mosquitto') {
    argv = [existsSync('/usr/sbin/mosquitto') ? '/usr/sbin/mosquitto' : 'mosquitto', '-c', confPath];
    cwd = benchDir;
  } else if (name === 'aedes') {
    argv = [process.execPath, join(benchDir, 'aedes-server.mjs'), String(port)];
    cwd = benchDir;
  } else {
    throw new Error(`unknown broker ${name}`);
  }
  const env = name === 'rmqtt-ts' ? Object.entries({ ...RMQTT_PLUGIN_ENV, ...extraEnv }).map(([k, v]) => `${k}=${shq(v)} `).join('') : '';
  // taskset execs the broker: the pid stays the broker's
  const pin = cpu === undefined ? '' : `taskset -c ${cpu} `;
  const inner = `ulimit -n 20000; ${env}exec ${pin}${argv.map(shq).join(' ')}`;
  return { cwd, argv, inner, shell: `sh -c ${shq(inner)}` };
}

function tail(file, lines = 15) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** The tcp.external port from rmqtt-ts's pino "listening" line, or undefined. */
function rmqttPort(logFile) {
  let text;
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    if (!line.includes('"listening"') || !line.includes('tcp.external')) continue;
    try {
      const j = JSON.parse(line);
      if (j.msg === 'listening' && j.listener === 'tcp.external') return Number(String(j.addr).split(':').pop());
    } catch {
      // partial line
    }
  }
  return undefined;
}

function commOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/**
 * Starts a broker and waits until its port accepts connections.
 * Returns { name, pid, port, child, logFile, command, alive(), stop(), logTail() } or throws with the log tail.
 */
export async function startBroker(name, { root, benchDir, rawDir, tag, extraArgs = [], env = {}, mosquittoExtra = '', cpu = PIN.broker, readyTimeoutMs = 30000 }) {
  const logFile = join(rawDir, `${tag}.broker.log`);
  let port;
  let confPath;
  if (name !== 'rmqtt-ts') port = await freePort();
  if (name === 'mosquitto') {
    confPath = join(rawDir, `${tag}.mosquitto.conf`);
    writeFileSync(confPath, mosquittoConf(port) + mosquittoExtra);
  }
  const cmd = brokerCommand(name, { root, benchDir, port, confPath, extraArgs, env, cpu });
  const fd = openSync(logFile, 'w');
  const child = spawnTracked('sh', ['-c', cmd.inner], { cwd: cmd.cwd, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const broker = {
    name,
    pid: child.pid,
    port,
    child,
    logFile,
    command: `cd ${shq(cmd.cwd)} && ${cmd.shell}`,
    alive: () => child.exitCode === null && child.signalCode === null && !child.spawnError,
    stop: (graceMs) => stopChild(child, graceMs),
    logTail: (n) => tail(logFile, n),
  };
  const t0 = Date.now();
  for (;;) {
    if (!broker.alive()) {
      const r = await child.done;
      throw Object.assign(new Error(`${name} exited during start-up (code ${r.code}, signal ${r.signal})`), { logTail: tail(logFile) });
    }
    if (name === 'rmqtt-ts' && broker.port === undefined) broker.port = rmqttPort(logFile);
    if (broker.port !== undefined && (await portAccepts(broker.port))) break;
    if (Date.now() - t0 > readyTimeoutMs) {
      await broker.stop();
      throw Object.assign(new Error(`${name} did not accept connections within ${readyTimeoutMs / 1000} s`), { logTail: tail(logFile) });
    }
    await sleep(50);
  }
  const comm = commOf(child.pid);
  if (comm === 'sh') {
    await broker.stop();
    throw Object.assign(new Error(`${name}: pid ${child.pid} is still the shell, not the broker`), { logTail: tail(logFile) });
  }
  return broker;
}

/** Versions for the report. */
export function brokerVersions({ benchDir, spawnSync }) {
  const v = {};
  const m = spawnSync('mosquitto', ['-h'], { encoding: 'utf8' });
  v.mosquitto = /mosquitto version (\S+)/.exec(`${m.stdout ?? ''}${m.stderr ?? ''}`)?.[1] ?? 'not found';
  const aedesPkg = join(benchDir, 'node_modules', 'aedes', 'package.json');
  v.aedes = existsSync(aedesPkg) ? JSON.parse(readFileSync(aedesPkg, 'utf8')).version : 'not installed';
  return v;
}
