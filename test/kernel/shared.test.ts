import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import sharedSubscription from '@rmqtt-ts/plugin-shared-subscription';
import { RawClientPool, connectTracked, startBroker, type RawClient, type RawConnectOptions, type TestBroker } from '@rmqtt-ts/testkit';
import type { PublishPacket } from '@rmqtt-ts/kernel';

// ---- helpers (raw clients, closed after every test) ----

const pool = new RawClientPool();

afterEach(() => {
  pool.destroyAll();
});

/** A v5 client unless told, CONNACK 0 required. */
const connect = (port: number, o: RawConnectOptions = {}): Promise<RawClient> => pool.connect(port, { protocolVersion: 5, ...o });

/** QoS 1 publish; resolves with the PUBACK reason code (routing is done by then). */
const publish = async (c: RawClient, topic: string, payload: string): Promise<number> => (await c.publish(topic, payload, { qos: 1 }))!.reasonCode;

/** Every PUBLISH a client has been sent, until it stays quiet for `quietMs`. */
async function drain(c: RawClient, quietMs = 150): Promise<PublishPacket[]> {
  const out: PublishPacket[] = [];
  for (;;) {
    let p;
    try {
      p = await c.next(quietMs);
    } catch {
      return out;
    }
    if (p === null) throw new Error(`connection closed after ${out.length} messages`);
    if (p.type !== 3) throw new Error(`expected PUBLISH, got packet type ${p.type}`);
    out.push(p);
  }
}

const payloads = (ps: PublishPacket[]): string[] => ps.map((p) => p.payload.toString());

let seq = 0;
const uniqueTopic = (): string => `shared${process.pid}-${++seq}`;
const uniqueId = (): string => `shared-client-${process.pid}-${++seq}`;

/** `n` members subscribed, in order, to `$share/{group}/{filter}` (QoS 0). */
async function members(port: number, n: number, group: string, filters: string[]): Promise<RawClient[]> {
  const out: RawClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = await connect(port);
    expect((await c.subscribe(filters.map((f) => ({ filter: `$share/${group}/${f}`, qos: 0 })))).reasonCodes).toEqual(filters.map(() => 0));
    out.push(c);
  }
  return out;
}

// ---- the kit has no helper for a plugin config directory: one per strategy ----

const dirs: string[] = [];

afterAll(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function brokerWithStrategy(strategy: string): Promise<TestBroker> {
  const dir = await mkdtemp(join(tmpdir(), 'rmqtt-shared-'));
  dirs.push(dir);
  await writeFile(join(dir, 'rmqtt-shared-subscription.toml'), `strategy = "${strategy}"\n`);
  return startBroker({ plugins: [sharedSubscription], pluginsDir: dir });
}

// ---- shared subscriptions without the plugin ----

describe('shared subscriptions', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker();
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('each message goes to exactly one member of the group', async () => {
    const t = uniqueTopic();
    const ms = await members(b.port(), 3, 'g', [t]);
    const p = await connect(b.port());
    for (let i = 0; i < 9; i++) expect(await publish(p, t, String(i))).toBe(0);
    const got = (await Promise.all(ms.map((c) => drain(c)))).flatMap(payloads).sort();
    expect(got).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8']);
  });

  it('two groups on the same filter each get a copy', async () => {
    const t = uniqueTopic();
    const g1 = await members(b.port(), 2, 'g1', [t]);
    const g2 = await members(b.port(), 2, 'g2', [t]);
    const p = await connect(b.port());
    for (let i = 0; i < 6; i++) await publish(p, t, String(i));
    const one = (await Promise.all(g1.map((c) => drain(c)))).flatMap(payloads).sort();
    const two = (await Promise.all(g2.map((c) => drain(c)))).flatMap(payloads).sort();
    expect(one).toEqual(['0', '1', '2', '3', '4', '5']);
    expect(two).toEqual(['0', '1', '2', '3', '4', '5']);
  });

  it('a non-shared subscriber of the same filter gets every message beside the group', async () => {
    const t = uniqueTopic();
    const g = await members(b.port(), 2, 'g', [t]);
    const plain = await connect(b.port());
    await plain.subscribe([{ filter: t, qos: 0 }]);
    const p = await connect(b.port());
    for (let i = 0; i < 4; i++) await publish(p, t, String(i));
    expect(payloads(await drain(plain))).toEqual(['0', '1', '2', '3']);
    expect((await Promise.all(g.map((c) => drain(c)))).flatMap(payloads).sort()).toEqual(['0', '1', '2', '3']);
  });

  it('a client subscribed both shared and non-shared gets two copies', async () => {
    const t = uniqueTopic();
    const c = await connect(b.port());
    await c.subscribe([{ filter: `$share/g/${t}`, qos: 0 }], { subscriptionIdentifiers: [1] });
    await c.subscribe([{ filter: t, qos: 0 }], { subscriptionIdentifiers: [2] });
    const p = await connect(b.port());
    await publish(p, t, 'm');
    const got = await drain(c);
    expect(payloads(got)).toEqual(['m', 'm']);
    expect(got.map((m) => m.properties.subscriptionIdentifiers![0]).sort()).toEqual([1, 2]);
  });

  it('round_robin is the default: members take turns', async () => {
    const t = uniqueTopic();
    const [a, bb] = await members(b.port(), 2, 'g', [t]);
    const p = await connect(b.port());
    for (let i = 0; i < 6; i++) await publish(p, t, String(i));
    expect(payloads(await drain(a!))).toEqual(['0', '2', '4']);
    expect(payloads(await drain(bb!))).toEqual(['1', '3', '5']);
  });

  it('[MQTT-4.8.2-3] a shared member gets messages at min(published QoS, granted QoS)', async () => {
    const t = uniqueTopic();
    const c = await connect(b.port());
    expect((await c.subscribe([{ filter: `$share/g/${t}`, qos: 2 }])).reasonCodes).toEqual([2]);
    const p = await connect(b.port());
    await publish(p, t, 'm');
    const m = await c.expect(3);
    expect(m.topic).toBe(t);
    expect(m.qos).toBe(1);
  });

  it('online members are preferred: an offline persistent member gets nothing while one is online', async () => {
    const t = uniqueTopic();
    const id = uniqueId();
    const off = await connect(b.port(), { clientId: id, properties: { sessionExpiryInterval: 60 } });
    await off.subscribe([{ filter: `$share/g/${t}`, qos: 1 }]);
    await off.disconnect();
    const on = await connect(b.port());
    await on.subscribe([{ filter: `$share/g/${t}`, qos: 0 }]);
    const p = await connect(b.port());
    for (let i = 0; i < 4; i++) await publish(p, t, String(i));
    expect(payloads(await drain(on))).toEqual(['0', '1', '2', '3']);
    const { client: back, connack } = await connectTracked(pool, b.port(), { protocolVersion: 5, clientId: id, cleanStart: false, properties: { sessionExpiryInterval: 0 } });
    expect(connack.sessionPresent).toBe(true);
    await back.expectSilence(300);
  });

  it('with no member online, an offline persistent member queues the messages', async () => {
    const t = uniqueTopic();
    const id = uniqueId();
    const off = await connect(b.port(), { clientId: id, properties: { sessionExpiryInterval: 60 } });
    await off.subscribe([{ filter: `$share/g/${t}`, qos: 1 }]);
    await off.disconnect();
    const p = await connect(b.port());
    await publish(p, t, 'a');
    await publish(p, t, 'b');
    const { client: back, connack } = await connectTracked(pool, b.port(), { protocolVersion: 5, clientId: id, cleanStart: false, properties: { sessionExpiryInterval: 0 } });
    expect(connack.sessionPresent).toBe(true);
    const got = await drain(back, 300);
    expect(payloads(got)).toEqual(['a', 'b']);
    expect(got.every((m) => m.qos === 1)).toBe(true);
  });

  it('[MQTT-3.8.3-4] No Local on a shared subscription gets DISCONNECT 0x82', async () => {
    const c = await connect(b.port());
    c.send({
      type: 8,
      packetId: 3,
      subscriptions: [{ filter: `$share/g/${uniqueTopic()}`, qos: 1, noLocal: true, retainAsPublished: false, retainHandling: 0 }],
      properties: {},
    });
    const before = await c.expectClose();
    expect(before).toHaveLength(1);
    expect(before[0]).toMatchObject({ type: 14, reasonCode: 0x82 });
  });

  for (const filter of ['$share//x', '$share/g+/x', '$share/g#/x', '$share/g', '$share/g/', '$share/g/a/#/b']) {
    it(`[MQTT-4.8.2-1] [MQTT-4.8.2-2] invalid shared filter ${filter} gets 0x8F (v5)`, async () => {
      const c = await connect(b.port());
      expect((await c.subscribe([{ filter, qos: 1 }])).reasonCodes).toEqual([0x8f]);
    });

    it(`[MQTT-4.8.2-1] [MQTT-4.8.2-2] invalid shared filter ${filter} gets 0x80 (v3.1.1)`, async () => {
      const c = await connect(b.port(), { protocolVersion: 4 });
      expect((await c.subscribe([{ filter, qos: 1 }])).reasonCodes).toEqual([0x80]);
    });
  }

  it('a v3.1.1 client can be a member of a shared group', async () => {
    const t = uniqueTopic();
    const c = await connect(b.port(), { protocolVersion: 4 });
    expect((await c.subscribe([{ filter: `$share/g/${t}`, qos: 1 }])).reasonCodes).toEqual([1]);
    const p = await connect(b.port());
    await publish(p, t, 'm');
    expect((await c.expect(3)).topic).toBe(t);
  });

  it('UNSUBSCRIBE with the same $share string leaves the group', async () => {
    const t = uniqueTopic();
    const [a, bb] = await members(b.port(), 2, 'g', [t]);
    expect((await a!.unsubscribe([`$share/g/${t}`])).reasonCodes).toEqual([0]);
    const p = await connect(b.port());
    for (let i = 0; i < 4; i++) await publish(p, t, String(i));
    expect(payloads(await drain(bb!))).toEqual(['0', '1', '2', '3']);
    expect(await drain(a!)).toEqual([]);
  });

  it('UNSUBSCRIBE of the bare filter does not remove a shared subscription (0x11)', async () => {
    const t = uniqueTopic();
    const [a] = await members(b.port(), 1, 'g', [t]);
    expect((await a!.unsubscribe([t])).reasonCodes).toEqual([0x11]);
    expect((await a!.unsubscribe([`$share/other/${t}`])).reasonCodes).toEqual([0x11]);
    const p = await connect(b.port());
    await publish(p, t, 'still');
    expect((await a!.expect(3)).payload.toString()).toBe('still');
  });

  it('when the last member leaves, the group gets nothing (PUBACK 0x10)', async () => {
    const t = uniqueTopic();
    const [a] = await members(b.port(), 1, 'g', [t]);
    await a!.unsubscribe([`$share/g/${t}`]);
    const p = await connect(b.port());
    expect(await publish(p, t, 'none')).toBe(0x10);
    await a!.expectSilence(200);
  });
});

// ---- strategies chosen through the plugin's config file ----

describe('strategy round_robin (plugin)', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await brokerWithStrategy('round_robin');
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('members take turns', async () => {
    const t = uniqueTopic();
    const [a, bb, c] = await members(b.port(), 3, 'g', [t]);
    const p = await connect(b.port());
    for (let i = 0; i < 6; i++) await publish(p, t, String(i));
    expect(payloads(await drain(a!))).toEqual(['0', '3']);
    expect(payloads(await drain(bb!))).toEqual(['1', '4']);
    expect(payloads(await drain(c!))).toEqual(['2', '5']);
  });

  it('turns are counted per filter of a group', async () => {
    const t = uniqueTopic();
    const [a, bb] = await members(b.port(), 2, 'g', [`${t}/x`, `${t}/y`]);
    const p = await connect(b.port());
    for (let i = 0; i < 8; i++) await publish(p, `${t}/${i % 2 === 0 ? 'x' : 'y'}`, String(i));
    expect(payloads(await drain(a!))).toEqual(['0', '1', '4', '5']);
    expect(payloads(await drain(bb!))).toEqual(['2', '3', '6', '7']);
  });
});

describe('strategy round_robin_per_group', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await brokerWithStrategy('round_robin_per_group');
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('members take turns across all filters of the group', async () => {
    const t = uniqueTopic();
    const [a, bb] = await members(b.port(), 2, 'g', [`${t}/x`, `${t}/y`]);
    const p = await connect(b.port());
    for (let i = 0; i < 8; i++) await publish(p, `${t}/${i % 2 === 0 ? 'x' : 'y'}`, String(i));
    expect(payloads(await drain(a!))).toEqual(['0', '2', '4', '6']);
    expect(payloads(await drain(bb!))).toEqual(['1', '3', '5', '7']);
  });
});

describe('strategy random', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await brokerWithStrategy('random');
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('reaches every member over many messages, in no fixed rotation', async () => {
    const t = uniqueTopic();
    const ms = await members(b.port(), 3, 'g', [t]);
    const p = await connect(b.port());
    const n = 60;
    for (let i = 0; i < n; i++) await publish(p, t, String(i));
    const got = await Promise.all(ms.map((c) => drain(c)));
    const owner = new Map<string, number>();
    got.forEach((list, m) => list.forEach((x) => owner.set(x.payload.toString(), m)));
    expect(owner.size).toBe(n);
    expect(got.reduce((sum, l) => sum + l.length, 0)).toBe(n);
    // each member gets some ((2/3)^60 chance of missing one)
    for (const list of got) expect(list.length).toBeGreaterThan(0);
    // and the sequence is not a strict rotation (a 3^-59 chance for random)
    const seqOfOwners = Array.from({ length: n }, (_, i) => owner.get(String(i)));
    const rotation = seqOfOwners.every((o, i) => o === seqOfOwners[i % 3]);
    expect(rotation).toBe(false);
  });
});

describe('strategy sticky', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await brokerWithStrategy('sticky');
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('keeps each publisher on one member', async () => {
    const t = uniqueTopic();
    const ms = await members(b.port(), 2, 'g', [t]);
    const p1 = await connect(b.port(), { clientId: uniqueId() });
    const p2 = await connect(b.port(), { clientId: uniqueId() });
    // runs of three: a rotation would split each publisher's messages over both members
    for (const [p, name] of [
      [p1, 'p1'],
      [p2, 'p2'],
      [p1, 'p1'],
      [p2, 'p2'],
    ] as const) {
      for (let i = 0; i < 3; i++) await publish(p, t, `${name}-${i}`);
    }
    const got = (await Promise.all(ms.map((c) => drain(c)))).map(payloads);
    expect(got[0]!.length + got[1]!.length).toBe(12);
    for (const name of ['p1', 'p2']) {
      const holders = got.map((l) => l.some((x) => x.startsWith(`${name}-`)));
      expect(holders.filter(Boolean)).toHaveLength(1);
    }
  });

  it('moves a publisher to another member when its member leaves', async () => {
    const t = uniqueTopic();
    const [a, bb] = await members(b.port(), 2, 'g', [t]);
    const p = await connect(b.port(), { clientId: uniqueId() });
    await publish(p, t, 'first');
    const [ga, gb] = [await drain(a!), await drain(bb!)];
    const [holder, other] = ga.length === 1 ? [a!, bb!] : [bb!, a!];
    expect(ga.length + gb.length).toBe(1);
    await holder.unsubscribe([`$share/g/${t}`]);
    await publish(p, t, 'second');
    await publish(p, t, 'third');
    expect(payloads(await drain(other))).toEqual(['second', 'third']);
  });
});

describe('strategy hash_clientid', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await brokerWithStrategy('hash_clientid');
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('sends all messages of one publisher to the same member', async () => {
    const t = uniqueTopic();
    const ms = await members(b.port(), 2, 'g', [t]);
    const ids = [uniqueId(), uniqueId(), uniqueId()];
    const pubs = await Promise.all(ids.map((clientId) => connect(b.port(), { clientId })));
    for (let round = 0; round < 2; round++) {
      for (let k = 0; k < pubs.length; k++) for (let i = 0; i < 3; i++) await publish(pubs[k]!, t, `p${k}-${round}-${i}`);
    }
    const got = (await Promise.all(ms.map((c) => drain(c)))).map(payloads);
    expect(got[0]!.length + got[1]!.length).toBe(18);
    for (let k = 0; k < pubs.length; k++) {
      const holders = got.map((l) => l.some((x) => x.startsWith(`p${k}-`)));
      expect(holders.filter(Boolean)).toHaveLength(1);
    }
  });

  it('a publisher that reconnects with the same client id lands on the same member', async () => {
    const t = uniqueTopic();
    const ms = await members(b.port(), 2, 'g', [t]);
    const id = uniqueId();
    const first = await connect(b.port(), { clientId: id });
    await publish(first, t, 'before');
    await first.disconnect();
    const second = await connect(b.port(), { clientId: id });
    await publish(second, t, 'after');
    const got = (await Promise.all(ms.map((c) => drain(c)))).map(payloads);
    expect(got.find((l) => l.length > 0)).toEqual(['before', 'after']);
  });
});

describe('strategy hash_topic', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await brokerWithStrategy('hash_topic');
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('sends all messages of one topic to the same member, whoever publishes', async () => {
    const t = uniqueTopic();
    const ms = await members(b.port(), 2, 'g', [`${t}/+`]);
    const p1 = await connect(b.port());
    const p2 = await connect(b.port());
    const topics = ['a', 'b', 'c', 'd', 'e'];
    for (const x of topics) {
      for (let i = 0; i < 2; i++) await publish(p1, `${t}/${x}`, `${x}-p1-${i}`);
      for (let i = 0; i < 2; i++) await publish(p2, `${t}/${x}`, `${x}-p2-${i}`);
    }
    const got = await Promise.all(ms.map((c) => drain(c)));
    expect(got[0]!.length + got[1]!.length).toBe(20);
    for (const x of topics) {
      const holders = got.map((l) => l.some((m) => m.topic === `${t}/${x}`));
      expect(holders.filter(Boolean)).toHaveLength(1);
    }
  });
});

describe('strategy local', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await brokerWithStrategy('local');
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('on a single node every member is local: members take turns', async () => {
    const t = uniqueTopic();
    const [a, bb] = await members(b.port(), 2, 'g', [t]);
    const p = await connect(b.port());
    for (let i = 0; i < 6; i++) await publish(p, t, String(i));
    expect(payloads(await drain(a!))).toEqual(['0', '2', '4']);
    expect(payloads(await drain(bb!))).toEqual(['1', '3', '5']);
  });
});

// ---- $exclusive/ and $limit/ ----

describe('$exclusive and $limit with limit_subscription on', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker({ listeners: { 'tcp.external': { limit_subscription: true } } });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('a second client\'s $exclusive subscription is refused with 0x97', async () => {
    const t = uniqueTopic();
    const a = await connect(b.port());
    const c = await connect(b.port());
    expect((await a.subscribe([{ filter: `$exclusive/${t}`, qos: 1 }])).reasonCodes).toEqual([1]);
    expect((await c.subscribe([{ filter: `$exclusive/${t}`, qos: 1 }])).reasonCodes).toEqual([0x97]);
  });

  it('a second v3.1.1 client\'s $exclusive subscription is refused with 0x80', async () => {
    const t = uniqueTopic();
    const a = await connect(b.port());
    const c = await connect(b.port(), { protocolVersion: 4 });
    await a.subscribe([{ filter: `$exclusive/${t}`, qos: 1 }]);
    expect((await c.subscribe([{ filter: `$exclusive/${t}`, qos: 1 }])).reasonCodes).toEqual([0x80]);
  });

  it('the holder may subscribe to its $exclusive filter again', async () => {
    const t = uniqueTopic();
    const a = await connect(b.port());
    await a.subscribe([{ filter: `$exclusive/${t}`, qos: 0 }]);
    expect((await a.subscribe([{ filter: `$exclusive/${t}`, qos: 2 }])).reasonCodes).toEqual([2]);
  });

  it('an $exclusive subscription receives messages published to the bare topic', async () => {
    const t = uniqueTopic();
    const a = await connect(b.port());
    await a.subscribe([{ filter: `$exclusive/${t}/+`, qos: 0 }]);
    const p = await connect(b.port());
    await publish(p, `${t}/x`, 'm');
    const m = await a.expect(3);
    expect(m.topic).toBe(`${t}/x`);
  });

  it('UNSUBSCRIBE of $exclusive frees the filter for another client', async () => {
    const t = uniqueTopic();
    const a = await connect(b.port());
    const c = await connect(b.port());
    await a.subscribe([{ filter: `$exclusive/${t}`, qos: 1 }]);
    expect((await c.subscribe([{ filter: `$exclusive/${t}`, qos: 1 }])).reasonCodes).toEqual([0x97]);
    expect((await a.unsubscribe([`$exclusive/${t}`])).reasonCodes).toEqual([0]);
    expect((await c.subscribe([{ filter: `$exclusive/${t}`, qos: 1 }])).reasonCodes).toEqual([1]);
  });

  it('the end of the holder\'s session frees the $exclusive filter', async () => {
    const t = uniqueTopic();
    const a = await connect(b.port());
    const c = await connect(b.port());
    await a.subscribe([{ filter: `$exclusive/${t}`, qos: 1 }]);
    await a.disconnect();
    expect((await c.subscribe([{ filter: `$exclusive/${t}`, qos: 1 }])).reasonCodes).toEqual([1]);
  });

  it('a plain subscription to the same filter is not limited by $exclusive', async () => {
    const t = uniqueTopic();
    const a = await connect(b.port());
    const c = await connect(b.port());
    await a.subscribe([{ filter: `$exclusive/${t}`, qos: 1 }]);
    expect((await c.subscribe([{ filter: t, qos: 1 }])).reasonCodes).toEqual([1]);
  });

  it('$limit/2/ admits two clients and refuses a third with 0x97', async () => {
    const t = uniqueTopic();
    const cs = [await connect(b.port()), await connect(b.port()), await connect(b.port())];
    const codes: number[] = [];
    for (const c of cs) codes.push(...(await c.subscribe([{ filter: `$limit/2/${t}`, qos: 1 }])).reasonCodes);
    expect(codes).toEqual([1, 1, 0x97]);
  });

  it('$limit/2/ subscribers all receive messages to the bare topic', async () => {
    const t = uniqueTopic();
    const a = await connect(b.port());
    const c = await connect(b.port());
    await a.subscribe([{ filter: `$limit/2/${t}`, qos: 0 }]);
    await c.subscribe([{ filter: `$limit/2/${t}`, qos: 0 }]);
    const p = await connect(b.port());
    await publish(p, t, 'm');
    expect((await a.expect(3)).topic).toBe(t);
    expect((await c.expect(3)).topic).toBe(t);
  });

  it('$limit/0/ is an invalid filter (0x8F)', async () => {
    const a = await connect(b.port());
    expect((await a.subscribe([{ filter: `$limit/0/${uniqueTopic()}`, qos: 1 }])).reasonCodes).toEqual([0x8f]);
  });
});

describe('$exclusive and $limit with limit_subscription off', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker({ listeners: { 'tcp.external': { limit_subscription: false } } });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('$exclusive/ is a literal filter: any number of clients may subscribe', async () => {
    const t = uniqueTopic();
    const a = await connect(b.port());
    const c = await connect(b.port());
    expect((await a.subscribe([{ filter: `$exclusive/${t}`, qos: 1 }])).reasonCodes).toEqual([1]);
    expect((await c.subscribe([{ filter: `$exclusive/${t}`, qos: 1 }])).reasonCodes).toEqual([1]);
  });

  it('$exclusive/ is a literal filter: it matches the topic $exclusive/..., not the bare topic', async () => {
    const t = uniqueTopic();
    const a = await connect(b.port());
    await a.subscribe([{ filter: `$exclusive/${t}`, qos: 0 }]);
    const p = await connect(b.port());
    await publish(p, t, 'bare');
    await publish(p, `$exclusive/${t}`, 'literal');
    const m = await a.expect(3);
    expect(m.topic).toBe(`$exclusive/${t}`);
    expect(m.payload.toString()).toBe('literal');
  });

  it('$limit/n/ is a literal filter', async () => {
    const t = uniqueTopic();
    const cs = [await connect(b.port()), await connect(b.port()), await connect(b.port())];
    const codes: number[] = [];
    for (const c of cs) codes.push(...(await c.subscribe([{ filter: `$limit/2/${t}`, qos: 0 }])).reasonCodes);
    expect(codes).toEqual([0, 0, 0]);
    const p = await connect(b.port());
    await publish(p, t, 'bare');
    await publish(p, `$limit/2/${t}`, 'literal');
    for (const c of cs) expect((await c.expect(3)).payload.toString()).toBe('literal');
  });
});

// ---- $delayed/ ----

describe('$delayed with delayed_publish on', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker({ listeners: { 'tcp.external': { delayed_publish: true } } });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('$delayed/1/{topic} is delivered to {topic} after about 1 s, not before', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 1 }]);
    const p = await connect(b.port());
    const sentAt = Date.now();
    expect(await publish(p, `$delayed/1/${t}`, 'later')).toBe(0);
    await s.expectSilence(700);
    const m = await s.expect(3, 2000);
    const after = Date.now() - sentAt;
    expect(m.topic).toBe(t);
    expect(m.payload.toString()).toBe('later');
    expect(m.qos).toBe(1);
    expect(after).toBeGreaterThanOrEqual(950);
    expect(after).toBeLessThan(2500);
  });

  it('a subscriber to the $delayed/ topic itself gets nothing', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    await s.subscribe([{ filter: `$delayed/1/${t}`, qos: 0 }, { filter: `$delayed/#`, qos: 0 }]);
    const p = await connect(b.port());
    await publish(p, `$delayed/1/${t}`, 'later');
    await s.expectSilence(1300);
  });

  it('a malformed $delayed topic is a Topic Name Invalid (0x90) protocol error', async () => {
    const p = await connect(b.port());
    p.send({ type: 3, topic: `$delayed/soon/${uniqueTopic()}`, payload: Buffer.from('x'), qos: 1, retain: false, dup: false, packetId: 4, properties: {} });
    expect(await p.expectClose()).toMatchObject([{ type: 14, reasonCode: 0x90 }]);
  });
});

describe('$delayed with delayed_publish off', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker({ listeners: { 'tcp.external': { delayed_publish: false } } });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('$delayed/{s}/{topic} is a literal topic, delivered at once', async () => {
    const t = uniqueTopic();
    const literal = await connect(b.port());
    await literal.subscribe([{ filter: `$delayed/1/${t}`, qos: 0 }]);
    const bare = await connect(b.port());
    await bare.subscribe([{ filter: t, qos: 0 }]);
    const p = await connect(b.port());
    await publish(p, `$delayed/1/${t}`, 'now');
    const m = await literal.expect(3, 500);
    expect(m.topic).toBe(`$delayed/1/${t}`);
    await bare.expectSilence(1300);
  });
});

describe('mqtt.delayed_publish_max with delayed_publish_immediate = true', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker({
      listeners: { 'tcp.external': { delayed_publish: true } },
      config: { 'mqtt.delayed_publish_max': 1, 'mqtt.delayed_publish_immediate': true },
    });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('a $delayed message over the limit is published at once', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0 }]);
    const p = await connect(b.port());
    await publish(p, `$delayed/1/${t}`, 'held');
    await publish(p, `$delayed/1/${t}`, 'over');
    const first = await s.expect(3, 500);
    expect(first.payload.toString()).toBe('over');
    const second = await s.expect(3, 2000);
    expect(second.payload.toString()).toBe('held');
  });
});

describe('mqtt.delayed_publish_max with delayed_publish_immediate = false', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker({
      listeners: { 'tcp.external': { delayed_publish: true } },
      config: { 'mqtt.delayed_publish_max': 1, 'mqtt.delayed_publish_immediate': false },
    });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('a $delayed message over the limit is dropped', async () => {
    const t = uniqueTopic();
    const s = await connect(b.port());
    await s.subscribe([{ filter: t, qos: 0 }]);
    const p = await connect(b.port());
    const dropped = b.broker.metrics.get('messages.dropped');
    await publish(p, `$delayed/1/${t}`, 'held');
    await publish(p, `$delayed/1/${t}`, 'over');
    expect(b.broker.metrics.get('messages.dropped')).toBe(dropped + 1);
    const m = await s.expect(3, 2000);
    expect(m.payload.toString()).toBe('held');
    await s.expectSilence(500);
  });
});
