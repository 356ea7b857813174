/**
 * State the broker must not leak or get wrong when clients leave in the middle of something: routes
 * and $exclusive slots of sessions that ended during an asynchronous ACL, sessions of connections that
 * closed while their session was being opened, inbound QoS 2 ids of refused messages, gauges, inflight
 * messages that no longer fit, retransmission into a socket that is not read, failing extension
 * points.
 */
import { connect as netConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { definePlugin, type ClusterTransport } from '@rmqtt-ts/plugin-api';
import { encode } from '@rmqtt-ts/kernel';
import { RawClient, RawClientPool, startBroker, type TestBroker } from '@rmqtt-ts/testkit';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const pool = new RawClientPool();
let b: TestBroker | undefined;

afterEach(async () => {
  pool.destroyAll();
  await b?.stop();
  b = undefined;
});

/** A subscribe ACL that answers "allow" after a delay. */
const slowAcl = definePlugin({
  name: 'slow-acl',
  apiVersion: '^1.0.0',
  create(ctx) {
    return {
      init() {
        ctx.hooks.on('client.subscribeCheckAcl', async () => {
          await sleep(100);
          return { result: { allow: true }, proceed: false };
        });
      },
    };
  },
});

/** A cluster transport whose calls take time (as any real one's do). */
function slowCluster(overrides: Partial<ClusterTransport> = {}) {
  return definePlugin({
    name: 'slow-cluster',
    apiVersion: '^1.0.0',
    create(ctx) {
      ctx.extensions.provide('clusterTransport', {
        forward() {},
        async locate() {
          await sleep(200);
          return undefined;
        },
        lock: () => () => {},
        takeover: () => undefined,
        register() {},
        unregister() {},
        ...overrides,
      });
      return {};
    },
  });
}

describe('a client that leaves while an asynchronous ACL decides its SUBSCRIBE', () => {
  it('leaves no route behind', async () => {
    b = await startBroker({ plugins: [slowAcl] });
    const c = await pool.connect(b.port(), { protocolVersion: 4, clientId: 'leaver' });
    c.send({ type: 8, packetId: 1, subscriptions: [{ filter: 'leak/#', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }], properties: {} });
    await sleep(20);
    c.destroy();
    await sleep(250);
    expect([...b.broker.ext.router.routes()]).toEqual([]);
    expect(b.broker.metrics.gauges.subscriptions.count).toBe(0);
    const p = await pool.connect(b.port(), { protocolVersion: 5 });
    const ack = await p.publish('leak/x', 'hi', { qos: 1 });
    expect(ack?.reasonCode).toBe(0x10); // no matching subscribers
  });

  it('does not hold an $exclusive slot', async () => {
    b = await startBroker({ plugins: [slowAcl], listeners: { 'tcp.external': { limit_subscription: true } } });
    const c = await pool.connect(b.port(), { protocolVersion: 5, clientId: 'holder' });
    c.send({ type: 8, packetId: 1, subscriptions: [{ filter: '$exclusive/x', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }], properties: {} });
    await sleep(20);
    c.destroy();
    await sleep(250);
    const other = await pool.connect(b.port(), { protocolVersion: 5, clientId: 'next' });
    const suback = await other.subscribe('$exclusive/x');
    expect(suback.reasonCodes).toEqual([0]);
  });
});

describe('a connection that closes while its session is being opened', () => {
  it('leaves no session online and no counts off', async () => {
    b = await startBroker({ plugins: [slowCluster()] });
    const c = pool.track(await RawClient.open(b.port(), { version: 5 }));
    c.send(RawClient.connectPacket({ protocolVersion: 5, clientId: 'ghost' }));
    await sleep(50);
    c.destroy();
    await sleep(400);
    expect(b.broker.sessions.get('ghost')).toBeUndefined();
    const g = b.broker.metrics.gauges;
    expect(g.connections.count).toBe(0);
    expect(g.handshakings.count).toBe(0);
    expect(b.broker.connections.counts('tcp.external')).toEqual({ open: 0, handshaking: 0 });
  });

  it('keeps a persistent session offline, to be resumed later', async () => {
    b = await startBroker({ plugins: [slowCluster()] });
    const c = pool.track(await RawClient.open(b.port(), { version: 5 }));
    c.send(RawClient.connectPacket({ protocolVersion: 5, clientId: 'ghost-p', cleanStart: false, properties: { sessionExpiryInterval: 60 } }));
    await sleep(50);
    c.destroy();
    await sleep(400);
    const s = b.broker.sessions.get('ghost-p');
    expect(s?.conn).toBeNull();
    const again = await pool.connect(b.port(), { protocolVersion: 5, clientId: 'ghost-p', cleanStart: false, properties: { sessionExpiryInterval: 60 } });
    await again.expectSilence(50);
  });
});

describe('takeover and the will', () => {
  it('[MQTT-3.1.3-9] a will with a delay is not published when the new connection resumes, whatever the old session expiry', async () => {
    b = await startBroker();
    const sub = await pool.connect(b.port(), { protocolVersion: 5, clientId: 'watcher' });
    await sub.subscribe('w/t');
    await pool.connect(b.port(), {
      protocolVersion: 5,
      clientId: 'tk',
      cleanStart: false,
      will: { topic: 'w/t', payload: Buffer.from('gone'), qos: 0, retain: false, properties: { willDelayInterval: 10 } },
    });
    const { client: c2, connack } = await RawClient.connect(b.port(), { protocolVersion: 5, clientId: 'tk', cleanStart: false });
    pool.track(c2);
    expect(connack.sessionPresent).toBe(true);
    expect(await sub.expectSilence(400)).toBe(true);
  });

  it('an administrator kick publishes the will [MQTT-3.1.2-8]', async () => {
    b = await startBroker();
    const sub = await pool.connect(b.port(), { protocolVersion: 5, clientId: 'watcher' });
    await sub.subscribe('kw');
    await pool.connect(b.port(), { protocolVersion: 5, clientId: 'kicked', will: { topic: 'kw', payload: Buffer.from('bye'), qos: 0, retain: false, properties: {} } });
    expect(await b.broker.control.kick('kicked')).toBe(true);
    const will = await sub.expect(3);
    expect(will.payload.toString()).toBe('bye');
  });
});

describe('inbound QoS 2 state', () => {
  it('a QoS 2 PUBLISH refused with a disconnect does not leave its packet id awaiting PUBREL', async () => {
    const deny = definePlugin({
      name: 'deny-all',
      apiVersion: '^1.0.0',
      create(ctx) {
        return { init: () => ctx.hooks.on('message.publishCheckAcl', () => ({ result: { allow: false, disconnect: true }, proceed: false })) };
      },
    });
    b = await startBroker({ plugins: [deny] });
    const c = await pool.connect(b.port(), { protocolVersion: 4, clientId: 'q2', cleanStart: false });
    c.send({ type: 3, topic: 'x', payload: Buffer.from('1'), qos: 2, retain: false, dup: false, packetId: 7, properties: {} });
    await c.expectClose();
    expect(b.broker.sessions.get('q2')!.awaitingRel.size).toBe(0);
    expect(b.broker.metrics.gauges.in_inflights.count).toBe(0);
  });
});

describe('gauges', () => {
  it('message_queues follows the queues through queue-full evictions', async () => {
    b = await startBroker({ listeners: { 'tcp.external': { max_mqueue_len: 2 } } });
    const s = await pool.connect(b.port(), { protocolVersion: 5, clientId: 'qsub', cleanStart: false, properties: { sessionExpiryInterval: 100 } });
    await s.subscribe({ filter: 'q/t', qos: 1 });
    s.destroy();
    await sleep(100);
    const p = await pool.connect(b.port(), { protocolVersion: 5 });
    for (let i = 0; i < 5; i++) await p.publish('q/t', `x${i}`, { qos: 1 });
    const session = b.broker.sessions.get('qsub')!;
    expect(session.out.queue.length).toBe(2);
    expect(b.broker.metrics.gauges.message_queues.count).toBe(2);
  });
});

describe('inflight messages of a resumed session', () => {
  it('[MQTT-3.1.2-25] one that no longer fits the new Maximum Packet Size is dropped and frees the window', async () => {
    b = await startBroker();
    const s1 = await pool.connect(b.port(), { protocolVersion: 5, clientId: 'big', cleanStart: false, properties: { sessionExpiryInterval: 100 } });
    await s1.subscribe({ filter: 'big/#', qos: 1 });
    const p = await pool.connect(b.port(), { protocolVersion: 5 });
    await p.publish('big/1', Buffer.alloc(1000, 1), { qos: 1 });
    await s1.expect(3); // left unacknowledged
    s1.destroy();
    await sleep(100);
    const dropped = b.broker.metrics.get('messages.dropped.packet_too_large');
    const s2 = await pool.connect(b.port(), { protocolVersion: 5, clientId: 'big', cleanStart: false, properties: { sessionExpiryInterval: 100, maximumPacketSize: 200, receiveMaximum: 1 } });
    await p.publish('big/2', 'small', { qos: 1 });
    const m = await s2.expect(3);
    expect(m.topic).toBe('big/2');
    expect(b.broker.metrics.get('messages.dropped.packet_too_large')).toBe(dropped + 1);
  });
});

describe('a client that does not read', () => {
  it('gets no MQTT 3.x retransmissions while its socket is backed up', async () => {
    b = await startBroker({ listeners: { 'tcp.external': { message_retry_interval: '1s', max_inflight: 4 } } });
    const sock = netConnect(b.port(), '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.on('error', () => undefined);
    sock.write(encode(RawClient.connectPacket({ protocolVersion: 4, clientId: 'slow', keepalive: 0 }), 4));
    sock.write(encode({ type: 8, packetId: 1, subscriptions: [{ filter: 'big', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }], properties: {} }, 4));
    await sleep(200);
    sock.pause();
    const p = await pool.connect(b.port(), { protocolVersion: 4 });
    for (let i = 0; i < 4; i++) await p.publish('big', Buffer.alloc(512 * 1024, 1), { qos: 1 });
    const conn = b.broker.sessions.get('slow')!.conn!;
    // the kernel's socket buffers take the first window and its first re-send; after that the
    // broker's own buffer is backed up and must stop growing
    await sleep(2300);
    const before = conn.transport.writableLength;
    expect(conn.congested).toBe(true);
    await sleep(2300); // two more retry intervals
    expect(conn.transport.writableLength).toBeLessThanOrEqual(before);
    sock.destroy();
  });
});

describe('failing extension points', () => {
  it('a cluster transport that rejects does not produce an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => {
      unhandled.push(e);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      const bad = slowCluster({
        locate: () => undefined,
        register: async () => {
          throw new Error('backend down');
        },
        unregister: async () => {
          throw new Error('backend down');
        },
      });
      b = await startBroker({ plugins: [bad] });
      const c = await pool.connect(b.port(), { protocolVersion: 5 });
      c.destroy();
      await sleep(200);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('max_topic_levels', () => {
  it('a v5 PUBLISH to a deeper topic gets DISCONNECT 0x90 and is not delivered', async () => {
    b = await startBroker({ listeners: { 'tcp.external': { max_topic_levels: 2 } } });
    const s = await pool.connect(b.port(), { protocolVersion: 5 });
    await s.subscribe('#');
    const p = await pool.connect(b.port(), { protocolVersion: 5 });
    p.send({ type: 3, topic: 'a/b/c', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, packetId: undefined, properties: {} });
    const got = await p.expectClose();
    expect(got.map((x) => (x.type === 14 ? x.reasonCode : -1))).toEqual([0x90]);
    expect(await s.expectSilence(200)).toBe(true);
  });

  it('a v5 will topic deeper than the maximum gets CONNACK 0x90', async () => {
    b = await startBroker({ listeners: { 'tcp.external': { max_topic_levels: 2 } } });
    const { client, connack } = await RawClient.connect(b.port(), {
      protocolVersion: 5,
      will: { topic: 'a/b/c', payload: Buffer.from('x'), qos: 0, retain: false, properties: {} },
    });
    pool.track(client);
    expect(connack.reasonCode).toBe(0x90);
  });
});

describe('shutdown', () => {
  it('[MQTT-3.1.3-9] a will waiting for its delay is published when the broker stops (its session ends)', async () => {
    const broker = await startBroker();
    const received: string[] = [];
    broker.broker.hooks.add('test', 'message.publish', (m) => {
      received.push(m.topic);
      return m;
    }, undefined, true);
    const c = await pool.connect(broker.port(), {
      protocolVersion: 5,
      clientId: 'delayed-will',
      properties: { sessionExpiryInterval: 60 },
      will: { topic: 'shutdown/will', payload: Buffer.from('bye'), qos: 0, retain: false, properties: { willDelayInterval: 30 } },
    });
    c.destroy();
    await sleep(100);
    expect(received).toEqual([]);
    await broker.stop();
    expect(received).toEqual(['shutdown/will']);
  });
});
