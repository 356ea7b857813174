/**
 * Robustness under a flood followed by abrupt disconnects (SPEC section 8; the pattern that crashes aedes):
 * the broker runs in a child process so that a crash, a stack overflow or a leak shows up as the child
 * dying or its heap not coming back down.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode } from '@rmqtt-ts/kernel';
import { RawClient } from '@rmqtt-ts/testkit';

const FIXTURE = fileURLToPath(new URL('./fixtures/flood-broker.mjs', import.meta.url));
const SUBSCRIBERS = 200;
const PUBLISHERS = 4;
const MESSAGES_PER_PUBLISHER = 5000;
const PAYLOAD = Buffer.alloc(1024, 0x61);
const TOPIC = 'flood/t';

interface GcReport {
  heapUsed: number;
  connections: number;
  sessions: number;
  dropped: number;
}

class ChildBroker {
  readonly proc: ChildProcess;
  exited = false;
  exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  stderr = '';
  port = 0;
  readonly #replies: ((r: GcReport) => void)[] = [];

  private constructor(proc: ChildProcess) {
    this.proc = proc;
    proc.on('exit', (code, signal) => {
      this.exited = true;
      this.exitInfo = { code, signal };
    });
    proc.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    proc.on('message', (m: GcReport & { cmd: string }) => {
      if (m.cmd === 'gc') this.#replies.shift()?.(m);
    });
  }

  static start(): Promise<ChildBroker> {
    const proc = fork(FIXTURE, [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    const child = new ChildBroker(proc);
    return new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`broker child did not start: ${child.stderr}`)), 15_000);
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /PORT (\d+)/.exec(out);
        if (m && child.port === 0) {
          clearTimeout(timer);
          child.port = Number(m[1]);
          resolve(child);
        }
      });
      proc.once('exit', () => {
        clearTimeout(timer);
        reject(new Error(`broker child exited during start-up: ${child.stderr}`));
      });
    });
  }

  /** Two forced GCs in the child, then its heap. */
  gc(timeoutMs = 10_000): Promise<GcReport> {
    return new Promise((resolve, reject) => {
      if (this.exited) {
        reject(new Error(`broker child is gone: ${JSON.stringify(this.exitInfo)} ${this.stderr}`));
        return;
      }
      const timer = setTimeout(() => reject(new Error('broker child did not answer gc')), timeoutMs);
      this.#replies.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.proc.send({ cmd: 'gc' });
    });
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    this.proc.send({ cmd: 'stop' });
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }
}

function publishBytes(count: number): Buffer {
  const one = encode({ type: 3, topic: TOPIC, payload: PAYLOAD, qos: 0, retain: false, dup: false, packetId: undefined, properties: {} }, 4);
  return Buffer.concat(Array.from({ length: count }, () => one));
}

/** Resolves when the socket has handed all written bytes to the OS. */
function drained(c: RawClient): Promise<void> {
  if (c.socket.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => c.socket.once('drain', () => resolve()));
}

async function roundTrip(port: number, id: string): Promise<void> {
  const { client: sub } = await RawClient.connect(port, { protocolVersion: 4, clientId: `${id}-sub` });
  const { client: pub } = await RawClient.connect(port, { protocolVersion: 4, clientId: `${id}-pub` });
  await sub.subscribe({ filter: 'warm/#', qos: 1 });
  await pub.publish('warm/up', 'x', { qos: 1 });
  const got = await sub.expect(3);
  sub.send({ type: 4, packetId: got.packetId!, reasonCode: 0, properties: {} });
  await sub.disconnect();
  await pub.disconnect();
}

async function waitForConnections(child: ChildBroker, n: number, timeoutMs: number): Promise<GcReport> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await child.gc();
    if (r.connections === n || Date.now() > deadline) return r;
    await new Promise((res) => setTimeout(res, 100));
  }
}

describe('flood of a paused fan-out, then abrupt disconnects', () => {
  let child: ChildBroker;
  let baseline: number;
  let duringFlood: GcReport | undefined;
  /** What went wrong while flooding, kept so each test reports it instead of one beforeAll failure. */
  let floodError: unknown;
  const clients: RawClient[] = [];

  beforeAll(async () => {
    child = await ChildBroker.start();
    await roundTrip(child.port, 'warmup');
    baseline = (await waitForConnections(child, 0, 3000)).heapUsed;

    try {
      for (let i = 0; i < SUBSCRIBERS; i += 20) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(20, SUBSCRIBERS - i) }, async (_, j) => {
            const { client } = await RawClient.connect(child.port, { protocolVersion: 4, clientId: `slow-${i + j}`, keepalive: 0 });
            await client.subscribe(TOPIC);
            // stop reading: the broker's writes back up in its per-client buffers
            client.socket.pause();
            return client;
          }),
        );
        clients.push(...batch);
      }

      const publishers = await Promise.all(
        Array.from({ length: PUBLISHERS }, async (_, i) => (await RawClient.connect(child.port, { protocolVersion: 4, clientId: `flooder-${i}`, keepalive: 0 })).client),
      );
      clients.push(...publishers);
      await Promise.all(
        publishers.map(async (p) => {
          const bytes = publishBytes(MESSAGES_PER_PUBLISHER);
          const CHUNK = 64 * 1024;
          for (let off = 0; off < bytes.length; off += CHUNK) {
            if (!p.socket.write(bytes.subarray(off, off + CHUNK))) await drained(p);
          }
          // packets are handled in order: the PINGRESP means every PUBLISH before it was routed
          p.send({ type: 12 });
          await p.expect(13, 30_000);
        }),
      );
      duringFlood = await child.gc();
      for (const c of clients) c.destroy();
      await waitForConnections(child, 0, 5000);
      // a closed socket is kept up to 2 s for its peer to finish (SocketTransport.end); only then is
      // everything it references garbage
      await new Promise((res) => setTimeout(res, 2500));
    } catch (err) {
      floodError = err;
    }
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.destroy();
    await child?.stop();
  });

  it('the paused subscribers backed up to their queue limit (the flood reached the bounded state)', () => {
    expect(floodError).toBeUndefined();
    expect(duringFlood?.connections).toBe(SUBSCRIBERS + PUBLISHERS);
    expect(duringFlood?.dropped).toBeGreaterThan(0);
  });

  it('the broker process survives', () => {
    expect(child.exitInfo, `broker child exited: ${child.stderr.slice(-2000)}`).toBeUndefined();
    expect(child.exited).toBe(false);
    expect(child.proc.exitCode).toBeNull();
  });

  it('a new client gets CONNACK within 1 s', async () => {
    const start = Date.now();
    const { client, connack } = await RawClient.connect(child.port, { protocolVersion: 5, clientId: 'after-flood' });
    const elapsed = Date.now() - start;
    try {
      expect(connack.reasonCode).toBe(0);
      expect(elapsed).toBeLessThan(1000);
    } finally {
      await client.disconnect();
    }
  });

  it('every connection is released and the heap returns within 20% of its pre-flood size', async () => {
    const r = await waitForConnections(child, 0, 3000);
    expect(r.connections).toBe(0);
    expect(r.sessions).toBe(0);
    expect(r.heapUsed).toBeLessThanOrEqual(baseline * 1.2);
  });
});
