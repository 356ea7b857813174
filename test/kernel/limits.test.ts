/**
 * Per-listener limits (SPEC section 1, "Limits per listener"): max_connections, handshake_timeout,
 * max_handshaking_limit, max_conn_rate, max_message_rate, max_byte_rate and max_packet_size. Times and
 * rates are measured at the client.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { encode } from '@rmqtt-ts/kernel';
import { RawClient, RawClientPool, connectTracked, startBroker, type TestBroker } from '@rmqtt-ts/testkit';

let idSeq = 0;
const uid = (prefix: string): string => `${prefix}-${++idSeq}`;

const connectBytes = (clientId: string, protocolVersion: 4 | 5 = 4): Buffer =>
  encode(RawClient.connectPacket({ protocolVersion, clientId }), protocolVersion);

function publishBytes(topic: string, payload: Buffer, version: 4 | 5 = 4): Buffer {
  return encode({ type: 3, topic, payload, qos: 0, retain: false, dup: false, packetId: undefined, properties: {} }, version);
}

/** ms until the broker closes the connection; fails if it sent anything first. */
async function closedAfter(c: RawClient, start: number, timeoutMs: number): Promise<number> {
  const got = await c.expectClose(timeoutMs);
  expect(got).toEqual([]);
  return Date.now() - start;
}

/** Until the broker has seen every earlier socket of the file close (the client side closes first). */
async function settled(b: TestBroker): Promise<void> {
  const deadline = Date.now() + 3000;
  while (b.broker.connections.size > 0 && Date.now() < deadline) await sleep(10);
  expect(b.broker.connections.size).toBe(0);
}

describe('max_connections', () => {
  let b: TestBroker;
  const t = new RawClientPool();

  beforeAll(async () => {
    b = await startBroker({ listeners: { 'tcp.limited': { max_connections: 3 }, 'ws.limited': { max_connections: 1 } } });
  });
  afterEach(() => t.destroyAll());
  afterAll(async () => {
    await b?.stop();
  });

  it('one socket over the limit is closed at once, unanswered, and counted in client.connection.refused', async () => {
    await settled(b);
    for (let i = 0; i < 3; i++) await t.connect(b.port('tcp.limited'), { clientId: uid('c') });
    const refusedBefore = b.broker.metrics.get('client.connection.refused');
    const start = Date.now();
    const extra = t.track(await RawClient.open(b.port('tcp.limited')));
    extra.send(connectBytes(uid('extra')));
    const elapsed = await closedAfter(extra, start, 2000);
    expect(elapsed).toBeLessThan(500);
    expect(b.broker.metrics.get('client.connection.refused')).toBe(refusedBefore + 1);
  });

  it('a socket arriving at the limit takes a slot freed within a moment (a client that already left)', async () => {
    await settled(b);
    const held = [];
    for (let i = 0; i < 3; i++) held.push(await t.connect(b.port('tcp.limited'), { clientId: uid('h') }));
    const late = t.track(await RawClient.open(b.port('tcp.limited')));
    late.send(connectBytes(uid('late')));
    // one of the three goes away just after
    held[0]!.destroy();
    const connack = await late.expect(2, 2000);
    expect(connack.reasonCode).toBe(0);
  });

  it('a slot freed by a disconnect is available again', async () => {
    await settled(b);
    const first = await t.connect(b.port('tcp.limited'), { clientId: uid('c') });
    for (let i = 0; i < 2; i++) await t.connect(b.port('tcp.limited'), { clientId: uid('c') });
    await first.disconnect();
    await sleep(50);
    const { connack } = await connectTracked(t, b.port('tcp.limited'), { clientId: uid('again') });
    expect(connack.reasonCode).toBe(0);
  });

  it('applies to a WebSocket listener: the socket over the limit never gets its upgrade', async () => {
    await settled(b);
    const url = `ws://127.0.0.1:${b.port('ws.limited')}/mqtt`;
    const first = new WebSocket(url, ['mqtt']);
    try {
      await new Promise<void>((resolve, reject) => {
        first.once('open', () => resolve());
        first.once('error', reject);
      });
      const refusedBefore = b.broker.metrics.get('client.connection.refused');
      const second = new WebSocket(url, ['mqtt']);
      const outcome = await new Promise<string>((resolve) => {
        second.once('open', () => resolve('open'));
        second.once('error', () => resolve('error'));
        second.once('unexpected-response', () => resolve('unexpected-response'));
      });
      second.terminate();
      expect(outcome).toBe('error');
      expect(b.broker.metrics.get('client.connection.refused')).toBe(refusedBefore + 1);
    } finally {
      first.terminate();
    }
  });
});

describe('handshake_timeout', () => {
  let b: TestBroker;
  const t = new RawClientPool();

  beforeAll(async () => {
    b = await startBroker({ listeners: { 'tcp.external': { handshake_timeout: '300ms' } } });
  });
  afterEach(() => t.destroyAll());
  afterAll(async () => {
    await b?.stop();
  });

  it('a socket that never sends CONNECT is closed after handshake_timeout and counted', async () => {
    const before = b.broker.metrics.get('client.handshaking.timeout');
    const start = Date.now();
    const c = t.track(await RawClient.open(b.port()));
    const elapsed = await closedAfter(c, start, 4000);
    expect(elapsed).toBeGreaterThanOrEqual(280);
    // the handshake sweep runs once a second
    expect(elapsed).toBeLessThan(1800);
    expect(b.broker.metrics.get('client.handshaking.timeout')).toBe(before + 1);
  });

  it('a socket that sends only part of a CONNECT is closed after handshake_timeout', async () => {
    const start = Date.now();
    const c = t.track(await RawClient.open(b.port()));
    c.send(connectBytes(uid('partial')).subarray(0, 6));
    const elapsed = await closedAfter(c, start, 4000);
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(1800);
  });

  it('a client that connected in time is not closed by it', async () => {
    const client = await t.connect(b.port(), { clientId: uid('ok'), keepalive: 0 });
    // long enough for a sweep past the timeout
    await sleep(1400);
    client.send({ type: 12 });
    await client.expect(13);
  });
});

describe('max_handshaking_limit', () => {
  let b: TestBroker;
  const t = new RawClientPool();

  beforeAll(async () => {
    b = await startBroker({
      listeners: {
        'tcp.hslong': { max_handshaking_limit: 1, handshake_timeout: '5s' },
        'tcp.hsshort': { max_handshaking_limit: 1, handshake_timeout: '1s' },
      },
    });
  });
  afterEach(() => t.destroyAll());
  afterAll(async () => {
    await b?.stop();
  });

  it('a socket over the limit waits, and its CONNECT is answered (not refused) once a slot frees', async () => {
    await settled(b);
    const port = b.port('tcp.hslong');
    const holder = t.track(await RawClient.open(port));
    await sleep(50);
    const waiter = t.track(await RawClient.open(port));
    waiter.send(connectBytes(uid('waiter')));
    expect(await waiter.expectSilence(400)).toBe(true);
    holder.send(connectBytes(uid('holder')));
    expect((await holder.expect(2)).reasonCode).toBe(0);
    const connack = await waiter.expect(2, 2000);
    expect(connack.reasonCode).toBe(0);
    expect(connack.sessionPresent).toBe(false);
  });

  it('a socket that waits for a slot past handshake_timeout is closed unanswered', async () => {
    await settled(b);
    const port = b.port('tcp.hsshort');
    const before = b.broker.metrics.get('client.handshaking.timeout');
    // the first holds the only slot; the second is next in line and takes it when the first times out,
    // so the third can only time out while waiting
    t.track(await RawClient.open(port));
    t.track(await RawClient.open(port));
    const start = Date.now();
    const third = t.track(await RawClient.open(port));
    third.send(connectBytes(uid('third')));
    const elapsed = await closedAfter(third, start, 4000);
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(b.broker.metrics.get('client.handshaking.timeout')).toBeGreaterThanOrEqual(before + 1);
  });
});

describe('max_conn_rate', () => {
  let b: TestBroker;
  const t = new RawClientPool();

  beforeAll(async () => {
    b = await startBroker({
      listeners: {
        'tcp.rate': { max_conn_rate: 1, handshake_timeout: '5s' },
        'tcp.rateshort': { max_conn_rate: 1, handshake_timeout: '500ms' },
      },
    });
  });
  afterEach(() => t.destroyAll());
  afterAll(async () => {
    await b?.stop();
  });

  it('a connection over the rate waits for a token and is then answered with CONNACK 0 (counted in client.connection.rate_limited)', async () => {
    const port = b.port('tcp.rate');
    const limitedBefore = b.broker.metrics.get('client.connection.rate_limited');
    await t.connect(port, { clientId: uid('first') });
    const start = Date.now();
    const second = t.track(await RawClient.open(port));
    second.send(connectBytes(uid('second')));
    const connack = await second.expect(2, 3000);
    const waited = Date.now() - start;
    expect(connack.reasonCode).toBe(0);
    // one token a second
    expect(waited).toBeGreaterThanOrEqual(800);
    expect(waited).toBeLessThan(2000);
    expect(b.broker.metrics.get('client.connection.rate_limited')).toBeGreaterThan(limitedBefore);
  });

  it('a connection that waits for a token past handshake_timeout is closed unanswered', async () => {
    const port = b.port('tcp.rateshort');
    const before = b.broker.metrics.get('client.handshaking.timeout');
    await t.connect(port, { clientId: uid('first') });
    const start = Date.now();
    const second = t.track(await RawClient.open(port));
    second.send(connectBytes(uid('second')));
    const elapsed = await closedAfter(second, start, 3000);
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(b.broker.metrics.get('client.handshaking.timeout')).toBe(before + 1);
  });
});

describe('max_message_rate and max_byte_rate', () => {
  let b: TestBroker;
  const t = new RawClientPool();
  // 20 messages at once, then 80 a second
  const MSG_BURST = 20;
  const MSG_PERIOD_MS = 250;
  // 4096 bytes at once, then 16384 a second
  const BYTE_BURST = 4096;
  const BYTE_PERIOD_MS = 250;

  beforeAll(async () => {
    b = await startBroker({
      listeners: {
        'tcp.free': {},
        'tcp.msgrate': { max_message_rate: `${MSG_BURST},${MSG_PERIOD_MS}ms` },
        'tcp.byterate': { max_byte_rate: `${BYTE_BURST},${BYTE_PERIOD_MS}ms` },
      },
    });
  });
  afterEach(() => t.destroyAll());
  afterAll(async () => {
    await b?.stop();
  });

  /**
   * Publish `n` QoS 0 messages in one write from a client on `listener`; a subscriber on the unlimited
   * listener receives them. Returns ms from the write to the last arrival, and the publisher.
   */
  async function burst(listener: string, n: number, payloadSize: number): Promise<{ elapsed: number; pub: RawClient }> {
    const topic = `rate/${uid(listener.replace('.', '-'))}`;
    const sub = await t.connect(b.port('tcp.free'), { clientId: uid('sub') });
    await sub.subscribe(topic);
    const pub = await t.connect(b.port(listener), { clientId: uid('pub'), keepalive: 0 });
    const bytes = Buffer.concat(
      Array.from({ length: n }, (_, i) => {
        const payload = Buffer.alloc(payloadSize, 0x2e);
        payload.write(String(i).padStart(4, '0'));
        return publishBytes(topic, payload);
      }),
    );
    const start = Date.now();
    pub.send(bytes);
    for (let i = 0; i < n; i++) {
      const m = await sub.expect(3, 5000);
      expect(m.payload.subarray(0, 4).toString()).toBe(String(i).padStart(4, '0'));
    }
    return { elapsed: Date.now() - start, pub };
  }

  it('without a rate limit the same burst arrives at once (the baseline for the two below)', async () => {
    const { elapsed } = await burst('tcp.free', 60, 16);
    expect(elapsed).toBeLessThan(400);
  });

  it('max_message_rate: a client over its rate is slowed to burst per period', async () => {
    const n = 60;
    const rateLimitedBefore = b.broker.metrics.get('client.rate_limited');
    const { elapsed } = await burst('tcp.msgrate', n, 16);
    // the burst passes at once, the rest at burst/period; the message that overdraws is let through
    const minimum = ((n - MSG_BURST - 1) * MSG_PERIOD_MS) / MSG_BURST;
    expect(elapsed).toBeGreaterThanOrEqual(minimum - 25);
    expect(b.broker.metrics.get('client.rate_limited')).toBeGreaterThan(rateLimitedBefore);
  });

  it('max_message_rate: the slowed client is never disconnected', async () => {
    const { pub } = await burst('tcp.msgrate', 60, 16);
    pub.send({ type: 12 });
    await pub.expect(13, 3000);
    expect(pub.isClosed).toBe(false);
  });

  it('max_byte_rate: a client over its byte rate is slowed to burst bytes per period', async () => {
    const n = 16;
    const payload = 1000;
    const total = n * publishBytes('rate/x', Buffer.alloc(payload)).length;
    const { elapsed } = await burst('tcp.byterate', n, payload);
    // topic length differs from "rate/x": a few bytes per message, well inside the margin
    const minimum = ((total - BYTE_BURST) * BYTE_PERIOD_MS) / BYTE_BURST;
    expect(elapsed).toBeGreaterThanOrEqual(minimum - 50);
  });

  it('max_byte_rate: the slowed client is never disconnected', async () => {
    const { pub } = await burst('tcp.byterate', 16, 1000);
    pub.send({ type: 12 });
    await pub.expect(13, 3000);
    expect(pub.isClosed).toBe(false);
  });
});

describe('max_packet_size', () => {
  let b: TestBroker;
  const t = new RawClientPool();
  const SMALL = 256;

  beforeAll(async () => {
    b = await startBroker({ listeners: { 'tcp.small': { max_packet_size: SMALL }, 'tcp.large': { max_packet_size: 4096 } } });
  });
  afterEach(() => t.destroyAll());
  afterAll(async () => {
    await b?.stop();
  });

  /** A v5 QoS 0 PUBLISH of exactly `size` bytes. */
  function publishOfSize(topic: string, size: number): Buffer {
    // the Remaining Length grows a byte past 127, so search rather than subtract
    for (let payload = size; payload >= 0; payload--) {
      const bytes = publishBytes(topic, Buffer.alloc(payload, 0x61), 5);
      if (bytes.length === size) return bytes;
    }
    throw new Error(`no PUBLISH of exactly ${size} bytes`);
  }

  async function subscriber(topic: string): Promise<RawClient> {
    const sub = await t.connect(b.port('tcp.large'), { protocolVersion: 5, clientId: uid('sub') });
    await sub.subscribe(topic);
    return sub;
  }

  it('CONNACK announces the listener\'s Maximum Packet Size', async () => {
    const small = await connectTracked(t, b.port('tcp.small'), { protocolVersion: 5, clientId: uid('c') });
    expect(small.connack.properties.maximumPacketSize).toBe(SMALL);
    const large = await connectTracked(t, b.port('tcp.large'), { protocolVersion: 5, clientId: uid('c') });
    expect(large.connack.properties.maximumPacketSize).toBe(4096);
  });

  it('a packet of exactly max_packet_size bytes is accepted and delivered', async () => {
    const sub = await subscriber('size/exact');
    const pub = await t.connect(b.port('tcp.small'), { protocolVersion: 5, clientId: uid('pub') });
    pub.send(publishOfSize('size/exact', SMALL));
    const m = await sub.expect(3);
    expect(m.topic).toBe('size/exact');
    expect(pub.isClosed).toBe(false);
  });

  it('a packet one byte over max_packet_size gets DISCONNECT 0x95 and is not delivered', async () => {
    const sub = await subscriber('size/over');
    const pub = await t.connect(b.port('tcp.small'), { protocolVersion: 5, clientId: uid('pub') });
    pub.send(publishOfSize('size/over', SMALL + 1));
    const got = await pub.expectClose(3000);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ type: 14, reasonCode: 0x95 });
    expect(await sub.expectSilence(200)).toBe(true);
  });

  it('a 3.1.1 client over max_packet_size is closed without a packet', async () => {
    const pub = await t.connect(b.port('tcp.small'), { protocolVersion: 4, clientId: uid('pub') });
    pub.send(publishBytes('size/v3', Buffer.alloc(SMALL)));
    expect(await pub.expectClose(3000)).toEqual([]);
  });

  it('the limit is per listener: the same packet passes on a listener with a larger limit', async () => {
    const sub = await subscriber('size/other');
    const pub = await t.connect(b.port('tcp.large'), { protocolVersion: 5, clientId: uid('pub') });
    pub.send(publishOfSize('size/other', SMALL + 1));
    const m = await sub.expect(3);
    expect(m.topic).toBe('size/other');
    expect(pub.isClosed).toBe(false);
  });
});
