/**
 * Killed mid-flood: the broker runs as a user runs it (the built command, the shipped config plus
 * session storage, message storage and the retainer on the embedded store), QoS 1 and QoS 2 messages
 * flood persistent sessions, the process gets SIGKILL, and a restarted broker must still deliver every
 * message it had acknowledged (PUBACK or PUBREC sent) — QoS 2 exactly once — and keep its retained
 * messages.
 *
 * The clients are raw MQTT 5 clients that keep their own session state across the restart, as a
 * conforming client does: the subscribers remember QoS 2 packet ids between PUBREC and PUBREL, the
 * publisher completes its released QoS 2 exchanges after reconnecting.
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RawClient, publishDone, type Packet } from '@rmqtt-ts/testkit';
import { LOOPBACK, SHIPPED, WORKSPACE, children, start, tempDir, type Running } from './broker-process.js';

/** A subscriber that acknowledges as the protocol says and records what it passed on. */
class Subscriber {
  /** Payloads passed on to the application, in order of arrival. */
  readonly got: string[] = [];
  /** QoS 2 packet ids received and not yet released, with their payloads (kept across reconnects). */
  readonly #pending = new Map<number, string>();
  #client: RawClient | undefined;

  constructor(readonly clientId: string) {}

  async connect(port: number): Promise<boolean> {
    const { client, connack } = await RawClient.connect(port, {
      protocolVersion: 5,
      clientId: this.clientId,
      cleanStart: false,
      properties: { sessionExpiryInterval: 3600, receiveMaximum: 100 },
    });
    this.#client = client;
    void this.#loop(client);
    return connack.sessionPresent;
  }

  async subscribe(filter: string, qos: 1 | 2): Promise<void> {
    await this.#client!.subscribe({ filter, qos });
  }

  async disconnect(): Promise<void> {
    await this.#client?.disconnect();
  }

  async #loop(c: RawClient): Promise<void> {
    for (;;) {
      let p: Packet | null;
      try {
        p = await c.next(60_000);
      } catch {
        continue;
      }
      if (p === null) return;
      if (p.type === 3) {
        const payload = p.payload.toString();
        if (p.qos === 0) this.got.push(payload);
        else if (p.qos === 1) {
          this.got.push(payload);
          c.send({ type: 4, packetId: p.packetId!, reasonCode: 0, properties: {} });
        } else {
          // method A: passed on at PUBREL; a PUBLISH sent again before that is the same message
          if (!this.#pending.has(p.packetId!)) this.#pending.set(p.packetId!, payload);
          c.send({ type: 5, packetId: p.packetId!, reasonCode: 0, properties: {} });
        }
      } else if (p.type === 6) {
        const payload = this.#pending.get(p.packetId);
        if (payload !== undefined) {
          this.got.push(payload);
          this.#pending.delete(p.packetId);
        }
        c.send({ type: 7, packetId: p.packetId, reasonCode: 0, properties: {} });
      }
    }
  }
}

/** Publishes QoS 1 and 2 messages as fast as a window of `window` allows, and notes which were acknowledged. */
class Flooder {
  /** Payload → QoS of messages the broker acknowledged (PUBACK / PUBREC). */
  readonly acked = new Map<string, 1 | 2>();
  /** QoS 2 packet ids that got PUBREC and still need PUBREL → PUBCOMP. */
  readonly released = new Set<number>();
  #client: RawClient | undefined;
  #sent = 0;
  #stopped = false;

  constructor(readonly clientId: string, readonly window: number) {}

  async connect(port: number): Promise<void> {
    const { client } = await RawClient.connect(port, { protocolVersion: 5, clientId: this.clientId, cleanStart: false, properties: { sessionExpiryInterval: 3600 } });
    this.#client = client;
  }

  /** Flood until the connection drops or `limit` messages were sent. */
  async flood(limit: number, onAcked: (n: number) => void): Promise<void> {
    const c = this.#client!;
    const outstanding = new Map<number, { payload: string; qos: 1 | 2 }>();
    let nextId = 1;
    const sendOne = (): void => {
      const i = this.#sent++;
      const qos: 1 | 2 = i % 2 === 0 ? 1 : 2;
      const payload = `m${i}`;
      const packetId = nextId;
      nextId = nextId === 0xffff ? 1 : nextId + 1;
      outstanding.set(packetId, { payload, qos });
      c.send({ type: 3, topic: `flood/${qos}/${i}`, payload: Buffer.from(payload), qos, retain: false, dup: false, packetId, properties: {} });
    };
    while (this.#sent < limit && outstanding.size < this.window) sendOne();
    for (;;) {
      const p = await c.next(10_000).catch(() => null);
      if (p === null) return;
      if (p.type === 4 || p.type === 5) {
        const o = outstanding.get(p.packetId);
        if (o === undefined) continue;
        outstanding.delete(p.packetId);
        if (p.reasonCode < 0x80) this.acked.set(o.payload, o.qos);
        if (p.type === 5) {
          this.released.add(p.packetId);
          c.send({ type: 6, packetId: p.packetId, reasonCode: 0, properties: {} });
        }
        onAcked(this.acked.size);
      } else if (p.type === 7) {
        this.released.delete(p.packetId);
      }
      if (this.#stopped) continue;
      while (this.#sent < limit && outstanding.size < this.window) sendOne();
    }
  }

  /** After a restart: release what got PUBREC, as a client resuming its session does. */
  async complete(): Promise<void> {
    const c = this.#client!;
    for (const id of this.released) {
      c.send({ type: 6, packetId: id, reasonCode: 0, properties: {} });
      const comp = await c.expect(7, 5000);
      expect(comp.packetId).toBe(id);
    }
    this.released.clear();
  }

  destroy(): void {
    this.#stopped = true;
    this.#client?.destroy();
  }
}

function setup(): { args: string[]; env: Record<string, string> } {
  const root = tempDir();
  const plugins = join(root, 'plugins');
  mkdirSync(plugins);
  cpSync(join(WORKSPACE, 'configs/plugins'), plugins, { recursive: true });
  for (const [name, dir] of [['session-storage', 'session'], ['message-storage', 'message'], ['retainer', 'retain']]) {
    writeFileSync(join(plugins, `rmqtt-${name}.toml`), `storage.type = "sled"\nstorage.sled.path = "${join(root, `data/${dir}/{node}`)}"\n`);
  }
  const extra = join(root, 'extra.toml');
  writeFileSync(
    extra,
    [
      `plugins.dir = "${plugins}"`,
      'plugins.default_startups = ["rmqtt-acl", "rmqtt-retainer", "rmqtt-shared-subscription", "rmqtt-session-storage", "rmqtt-message-storage"]',
      // the offline queue holds the whole flood: nothing acknowledged may be dropped for room
      'listener.tcp.external.max_mqueue_len = 100000',
    ].join('\n'),
  );
  // the session store's path from the file, the same for both runs (not a fresh one per start)
  return { args: ['-f', SHIPPED, '-f', extra], env: { ...LOOPBACK, RMQTT_PLUGIN_SESSION_STORAGE__STORAGE__SLED__PATH: join(root, 'data/session/{node}') } };
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('SIGKILL mid-flood', () => {
  it('every acknowledged QoS 1/2 message reaches its persistent sessions after the restart, QoS 2 exactly once', async () => {
    const { args, env } = setup();
    let broker: Running = await start(args, env);
    let port = broker.port('tcp.external');

    // online QoS 2, online QoS 1, and an offline QoS 2 subscriber
    const online2 = new Subscriber('sub-online-2');
    const online1 = new Subscriber('sub-online-1');
    const offline2 = new Subscriber('sub-offline-2');
    for (const [s, qos] of [[online2, 2], [online1, 1], [offline2, 2]] as const) {
      await s.connect(port);
      await s.subscribe('flood/#', qos);
    }
    await offline2.disconnect();

    // retained messages set before the flood
    const retainer = await RawClient.connect(port, { protocolVersion: 5, clientId: 'retainer' });
    for (const [topic, payload] of [['state/a', 'A'], ['state/b', 'B']]) await publishDone(retainer.client, topic, payload, { qos: 1, retain: true });
    retainer.client.destroy();

    const pub = new Flooder('flooder', 12);
    await pub.connect(port);
    let killedAt = -1;
    const flooding = pub.flood(5000, (n) => {
      if (n === 600 && killedAt < 0) {
        killedAt = n;
        broker.child.kill('SIGKILL');
      }
    });
    await flooding;
    await broker.exit;
    expect(broker.child.signalCode).toBe('SIGKILL');
    const acked = new Map(pub.acked);
    expect(acked.size).toBeGreaterThanOrEqual(600);

    broker = await start(args, env);
    port = broker.port('tcp.external');
    for (const s of [online2, online1, offline2]) expect(await s.connect(port)).toBe(true);
    await pub.connect(port);
    await pub.complete();

    const wanted = [...acked.keys()];
    for (const s of [online2, online1, offline2]) {
      await waitFor(() => wanted.every((p) => s.got.includes(p)), 20_000, `${s.clientId} to get all ${wanted.length} acknowledged messages`);
    }
    // QoS 2 deliveries (both sides QoS 2) exactly once; QoS 1 at least once
    for (const s of [online2, offline2]) {
      const counts = new Map<string, number>();
      for (const p of s.got) counts.set(p, (counts.get(p) ?? 0) + 1);
      const twice = [...acked].filter(([p, qos]) => qos === 2 && (counts.get(p) ?? 0) !== 1).map(([p]) => p);
      expect(twice, `${s.clientId}: QoS 2 messages not delivered exactly once`).toEqual([]);
    }
    // the retained messages are intact
    const reader = await RawClient.connect(port, { protocolVersion: 5, clientId: 'reader' });
    await reader.client.subscribe({ filter: 'state/#', qos: 1 });
    const retained = [await reader.client.expect(3), await reader.client.expect(3)].map((p) => [p.topic, p.payload.toString(), p.retain]).sort();
    expect(retained).toEqual([
      ['state/a', 'A', true],
      ['state/b', 'B', true],
    ]);
    reader.client.destroy();
    pub.destroy();
    for (const c of children) c.kill('SIGKILL');
  }, 90_000);
});
