/**
 * The scenarios. The mqbench commands are those of ../shared/tools/mqbench/BASELINES.md, with
 * `-p {port} … --pid {pid} --quiet`; {port} and {pid} are filled in per run.
 */
import { BROKERS } from './brokers.mjs';

/** What each case's ratio columns compare. */
export const METRIC = {
  throughput: { label: 'msgs/s', higherIsBetter: true },
  connRate: { label: 'conn/s', higherIsBetter: true },
  p99: { label: 'p99 latency', higherIsBetter: false },
};

/** Case names in the order they run and are reported. */
export const CASE_NAMES = ['A', 'A19k', 'A50k', 'B', 'B-noplugins', 'B-auth', 'C', 'C30', 'D', 'E20', 'F', 'G0', 'G1', 'B-long'];

/**
 * @param {{ quick: boolean, longSeconds: number }} opts
 */
export function buildCases({ quick, longSeconds, runs }) {
  // B and B-noplugins price the default plugins against each other: a 10% budget measured with B's
  // run-to-run spread needs more than three runs for steady medians
  const pairRuns = quick ? undefined : Math.max(5, runs ?? 3);
  const d = String(quick ? 5 : 20);
  const hold = String(quick ? 2 : 5);
  const tail = ['--pid', '{pid}', '--quiet'];
  const conn = (n, extra = []) => ['conn', '-p', '{port}', '-c', String(n), '-r', '0', '--window', '500', '--hold', hold, ...extra, ...tail];
  const B = ['--pubs', '40', '--subs', '40', '--topics', '40', '-s', '64'];
  const fan = ['--pubs', '1', '--subs', '1000', '--topics', '1', '-s', '64'];
  const pubsub = (shape, extra = [], dur = d, t = tail) => ['pubsub', '-p', '{port}', ...shape, '-d', dur, ...extra, ...t];
  return [
    {
      name: 'A',
      title: '10k connections, as fast as possible (window 500), held',
      kind: 'conn',
      metric: 'connRate',
      args: conn(10000),
    },
    {
      name: 'A19k',
      title: '19,000 idle connections (the most one process can hold here), memory per connection',
      kind: 'conn',
      metric: 'connRate',
      heavy: true,
      args: conn(19000),
    },
    {
      name: 'A50k',
      title: '50k connection storm (3 generator processes, 4 source addresses); the broker must still serve afterwards',
      kind: 'conn',
      metric: 'connRate',
      heavy: true,
      args: conn(50000, ['--procs', '3', '--src-ips', '4', '--conn-timeout', '10']),
      serveCheck: ['pubsub', '-p', '{port}', '--pubs', '1', '--subs', '1', '-d', '2', ...tail],
    },
    {
      name: 'B',
      title: 'QoS 0, 40 publishers -> 40 subscribers, 40 topics, 64 B, unlimited (end-to-end window)',
      kind: 'pubsub',
      metric: 'throughput',
      throughput: true,
      zeroLoss: true,
      group: 'B',
      runs: pairRuns,
      args: pubsub(B),
    },
    {
      name: 'B-noplugins',
      title: 'B with no plugins started (--plugins-default-startups with an empty list)',
      kind: 'pubsub',
      metric: 'throughput',
      group: 'B',
      only: ['rmqtt-ts'],
      brokerArgs: ['--plugins-default-startups'],
      runs: pairRuns,
      args: pubsub(B),
    },
    {
      name: 'B-auth',
      title: 'B with the file ACL and auth-http (an HTTP server answering allow with X-Cache: -1) added to the default plugins',
      kind: 'pubsub',
      metric: 'throughput',
      group: 'B',
      only: ['rmqtt-ts'],
      runs: pairRuns,
      // filled in by the harness: -f <generated config> whose plugins.dir holds auth-http's file
      authHttp: true,
      args: pubsub(B),
    },
    {
      name: 'C',
      title: 'QoS 0 fan-out 1 publisher -> 1000 subscribers on one topic, window of 5 messages',
      kind: 'pubsub',
      metric: 'throughput',
      throughput: true,
      zeroLoss: true,
      args: pubsub(fan, ['--inflight', '5']),
    },
    {
      name: 'C30',
      title: 'fan-out 1 -> 1000 at 30 msg/s (30k deliveries/s, below saturation): latency',
      kind: 'pubsub',
      metric: 'p99',
      zeroLoss: true,
      args: pubsub(fan, ['--rate', '30']),
    },
    {
      name: 'D',
      title: 'as B with QoS 1, 100 in flight per publisher',
      kind: 'pubsub',
      metric: 'throughput',
      throughput: true,
      zeroLoss: true,
      args: pubsub(B, ['-q', '1', '--inflight', '100']),
    },
    {
      name: 'E20',
      title: 'as B with QoS 2, 20 in flight per publisher',
      kind: 'pubsub',
      metric: 'throughput',
      throughput: true,
      zeroLoss: true,
      args: pubsub(B, ['-q', '2', '--inflight', '20']),
    },
    {
      name: 'F',
      title: 'as B over MQTT 5',
      kind: 'pubsub',
      metric: 'throughput',
      throughput: true,
      zeroLoss: true,
      na: { aedes: 'aedes 1.2.0 has no MQTT 5 (CONNACK 0x01)' },
      args: pubsub(B, ['-V', '5']),
    },
    // Egress bridge: publishers on the broker measured, subscribers on a second broker (a mosquitto, the
    // "remote") that the measured broker bridges bench/# to. Two mqbench processes: the subscribers'
    // (started first) gives the delivered rate and the end-to-end latency (8-byte payloads carry only the
    // send time, which both processes read from one monotonic clock); the publishers' gives the offered
    // rate and the measured broker's CPU and memory.
    {
      name: 'G0',
      title: 'egress bridge to a remote mosquitto, QoS 0: 10 publishers at 10,000 msg/s each -> bridge -> 10 subscribers on the remote, 10 topics, 8 B',
      kind: 'egress',
      metric: 'throughput',
      egressQos: 0,
      na: { aedes: 'aedes has no MQTT bridge' },
      args: pubsub(['--pubs', '10', '--subs', '0', '--topics', '10', '-s', '8'], ['-q', '0', '--rate', '10000']),
      subArgs: ['pubsub', '-p', '{sink}', '--pubs', '0', '--subs', '10', '--topics', '10', '-s', '8', '--sub-qos', '0', '-d', d, '--drain', '1', '--quiet'],
    },
    {
      name: 'G1',
      title: 'as G0 with QoS 1 end to end (publishers at 10,000 msg/s each with 100 in flight, the bridge publishes at QoS 1, subscribers at QoS 1)',
      kind: 'egress',
      metric: 'throughput',
      egressQos: 1,
      na: { aedes: 'aedes has no MQTT bridge' },
      args: pubsub(['--pubs', '10', '--subs', '0', '--topics', '10', '-s', '8'], ['-q', '1', '--inflight', '100', '--rate', '10000']),
      subArgs: ['pubsub', '-p', '{sink}', '--pubs', '0', '--subs', '10', '--topics', '10', '-s', '8', '--sub-qos', '1', '-d', d, '--drain', '1', '--quiet'],
    },
    {
      name: 'B-long',
      title: `B for ${longSeconds} s with the broker's VmRSS sampled every 10 s (memory must stay flat)`,
      kind: 'pubsub',
      metric: 'throughput',
      only: ['rmqtt-ts'],
      heavy: true,
      long: true,
      runs: 1,
      // no --quiet: mqbench's per-second progress lines go to raw/
      args: pubsub(B, [], String(longSeconds), ['--pid', '{pid}']),
    },
  ];
}

/**
 * Applies --quick, --only, --no-long and --brokers. Returns the cases to run, each with `brokers`
 * (the brokers it runs on) and `naBrokers` (selected brokers it cannot run on, with the reason).
 */
export function selectCases(cases, { quick, only, noLong, brokers }) {
  if (only) {
    const unknown = only.filter((n) => !CASE_NAMES.includes(n));
    if (unknown.length) throw new Error(`--only: unknown case ${unknown.join(', ')} (cases: ${CASE_NAMES.join(', ')})`);
  }
  const picked = [];
  for (const c of cases) {
    if (only && !only.includes(c.name)) continue;
    if (!only && quick && c.heavy) continue;
    if (noLong && c.long) continue;
    const allowed = (c.only ?? BROKERS).filter((b) => brokers.includes(b));
    const run = allowed.filter((b) => !c.na?.[b]);
    const naBrokers = Object.fromEntries(allowed.filter((b) => c.na?.[b]).map((b) => [b, c.na[b]]));
    if (run.length === 0 && Object.keys(naBrokers).length === 0) continue;
    picked.push({ ...c, brokers: run, naBrokers });
  }
  return picked;
}

/** Fills {port}, {pid} and {sink} (the remote broker of the egress cases). */
export function fill(args, { port, pid, sink }) {
  return args.map((a) => (a === '{port}' ? String(port) : a === '{pid}' ? String(pid) : a === '{sink}' ? String(sink) : a));
}

/** The command as shown in the report. */
export function showArgs(args) {
  return `mqbench ${args.map((a) => (a === '{port}' ? '$PORT' : a === '{pid}' ? '$BROKER_PID' : a === '{sink}' ? '$REMOTE_PORT' : a)).join(' ')}`;
}
