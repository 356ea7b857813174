import { connect as netConnect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import retainer from '@rmqtt-ts/plugin-retainer';
import { definePlugin, type ConnectInfo } from '@rmqtt-ts/plugin-api';
import type { Packet, ProtocolVersion } from '@rmqtt-ts/kernel';
import { RawClient, RawClientPool, connectTracked, startBroker, subscribeGranted, type TestBroker } from '@rmqtt-ts/testkit';

// ---- helpers ----

/** Raw clients opened by a test; destroyed after it, whatever happened. */
const pool = new RawClientPool();

afterEach(() => {
  pool.destroyAll();
});

/**
 * Write bytes on a fresh socket and collect every byte the broker sends until it closes the
 * connection. Used where the exact bytes matter or where a CONNECT the codec would refuse to build is needed.
 */
function exchange(port: number, bytes: Buffer, timeoutMs = 3000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = netConnect({ port, host: '127.0.0.1' });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connection still open after ${timeoutMs} ms; got <${Buffer.concat(chunks).toString('hex')}>`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

/** A CONNECT with any protocol name and level (clean session, keepalive 60); lengths stay below 128. */
function connectBytes(protocolName: string, level: number, clientId: string): Buffer {
  const name = Buffer.from(protocolName);
  const id = Buffer.from(clientId);
  const body = Buffer.concat([Buffer.from([0, name.length]), name, Buffer.from([level, 0x02, 0x00, 0x3c, 0, id.length]), id]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

const uid = (prefix: string): string => `${prefix}-${Math.random().toString(16).slice(2, 10)}`;

const will = (topic: string, qos: 0 | 1 | 2, retain = false) => ({ topic, payload: Buffer.from('gone'), qos, retain, properties: {} });

// ---- tests ----

describe('CONNECT on the default listener', () => {
  let b: TestBroker;
  let port: number;
  beforeAll(async () => {
    b = await startBroker({
      listeners: {
        'tcp.external': {},
        'tcp.tuned': { max_inflight: 4, max_topic_aliases: 10, max_qos_allowed: 1, max_packet_size: 4096 },
        'tcp.short': { max_clientid_len: 8 },
        'tcp.range': { min_keepalive: 10, max_keepalive: 100 },
        'tcp.nozero': { allow_zero_keepalive: false },
      },
    });
    port = b.port('tcp.external');
  });
  afterAll(async () => {
    await b?.stop();
  });

  describe('protocol versions', () => {
    for (const version of [3, 4, 5] as const) {
      it(`accepts protocol level ${version} (${version === 3 ? 'MQIsdp' : 'MQTT'}) on the same listener`, async () => {
        const { client, connack } = await connectTracked(pool, port, { protocolVersion: version, clientId: uid(`v${version}`) });
        expect(connack.reasonCode).toBe(0);
        expect(connack.sessionPresent).toBe(false);
        // the connection is usable: a PINGREQ is answered
        client.send({ type: 12 });
        await client.expect(13);
      });
    }

    for (const [name, level] of [
      ['MQTT', 6],
      ['MQTT', 2],
      ['MQTT', 3],
      ['MQIsdp', 4],
    ] as const) {
      it(`[MQTT-3.1.2-2] protocol ${name} level ${level} gets CONNACK 0x01 in 3.1.1 format (20 02 00 01), then close`, async () => {
        const got = await exchange(port, connectBytes(name, level, 'badlevel'));
        expect(got.toString('hex')).toBe('20020001');
      });
    }

    it('v5 CONNACK on the default listener: Receive Maximum 16, Maximum Packet Size 1M, Retain Available 0, Server Keep Alive', async () => {
      const { connack } = await connectTracked(pool, port, { protocolVersion: 5, keepalive: 42 });
      expect(connack.reasonCode).toBe(0);
      const p = connack.properties;
      expect(p.receiveMaximum).toBe(16);
      expect(p.maximumPacketSize).toBe(1024 * 1024);
      expect(p.retainAvailable).toBe(0);
      expect(p.serverKeepAlive).toBe(42);
      // max_topic_aliases 0 and max_qos_allowed 2: nothing to announce
      expect(p.topicAliasMaximum).toBeUndefined();
      expect(p.maximumQoS).toBeUndefined();
      expect(p.assignedClientIdentifier).toBeUndefined();
    });

    it('v5 CONNACK announces the listener limits: Receive Maximum, Maximum Packet Size, Topic Alias Maximum, Maximum QoS', async () => {
      const { connack } = await connectTracked(pool, b.port('tcp.tuned'), { protocolVersion: 5 });
      expect(connack.reasonCode).toBe(0);
      expect(connack.properties).toMatchObject({ receiveMaximum: 4, maximumPacketSize: 4096, topicAliasMaximum: 10, maximumQoS: 1, retainAvailable: 0 });
    });

    for (const clientMax of [2, 100]) {
      it(`v5 CONNACK Receive Maximum is the listener max_inflight (4) when the client sent ${clientMax}`, async () => {
        const { connack } = await connectTracked(pool, b.port('tcp.tuned'), { protocolVersion: 5, properties: { receiveMaximum: clientMax } });
        expect(connack.reasonCode).toBe(0);
        expect(connack.properties.receiveMaximum).toBe(4);
      });
    }

    it('a v3.1.1 CONNACK carries no properties (4 bytes on the wire)', async () => {
      const got = await new Promise<Buffer>((resolve, reject) => {
        const socket = netConnect({ port, host: '127.0.0.1' });
        socket.on('connect', () => socket.write(connectBytes('MQTT', 4, uid('bytes'))));
        socket.once('data', (c: Buffer) => {
          socket.destroy();
          resolve(c);
        });
        socket.on('error', reject);
      });
      expect(got.toString('hex')).toBe('20020000');
    });
  });

  describe('first and second CONNECT', () => {
    for (const [label, bytes] of [
      ['PINGREQ', [0xc0, 0x00]],
      ['PUBLISH', [0x30, 0x05, 0x00, 0x01, 0x61, 0x68, 0x69]],
      ['SUBSCRIBE', [0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x00]],
      ['DISCONNECT', [0xe0, 0x00]],
    ] as const) {
      it(`[MQTT-3.1.0-1] a first packet ${label} closes the connection without any packet`, async () => {
        const got = await exchange(port, Buffer.from(bytes));
        expect(got.length).toBe(0);
      });
    }

    it('[MQTT-3.1.0-2] a second CONNECT from a v5 client gets DISCONNECT 0x82, then close', async () => {
      const { client } = await connectTracked(pool, port, { protocolVersion: 5, clientId: uid('second5') });
      client.send(RawClient.connectPacket({ protocolVersion: 5, clientId: uid('second5') }));
      const got = await client.expectClose();
      expect(got.map((p) => p.type)).toEqual([14]);
      expect((got[0] as Extract<Packet, { type: 14 }>).reasonCode).toBe(0x82);
    });

    it('[MQTT-3.1.0-2] a second CONNECT from a v3.1.1 client closes the connection without any packet', async () => {
      const { client } = await connectTracked(pool, port, { protocolVersion: 4, clientId: uid('second4') });
      client.send(RawClient.connectPacket({ protocolVersion: 4, clientId: uid('second4') }));
      expect(await client.expectClose()).toEqual([]);
    });
  });

  describe('client identifier', () => {
    it('[MQTT-3.1.3-6] v3.1.1 accepts a zero-length client id with clean session', async () => {
      const { client, connack } = await connectTracked(pool, port, { protocolVersion: 4, clientId: '', cleanStart: true });
      expect(connack.reasonCode).toBe(0);
      expect(connack.sessionPresent).toBe(false);
      client.send({ type: 12 });
      await client.expect(13);
    });

    it('[MQTT-3.2.2-16] v5 zero-length client id with clean start gets an Assigned Client Identifier of 32 hex chars', async () => {
      const { connack } = await connectTracked(pool, port, { protocolVersion: 5, clientId: '', cleanStart: true });
      expect(connack.reasonCode).toBe(0);
      expect(connack.properties.assignedClientIdentifier).toMatch(/^[0-9a-f]{32}$/);
    });

    it('[MQTT-3.2.2-16] each zero-length client id gets a different assigned id', async () => {
      const a = await connectTracked(pool, port, { protocolVersion: 5, clientId: '' });
      const c = await connectTracked(pool, port, { protocolVersion: 5, clientId: '' });
      expect(a.connack.properties.assignedClientIdentifier).not.toBe(c.connack.properties.assignedClientIdentifier);
      // both still connected: neither took the other over
      expect(await a.client.expectSilence(200)).toBe(true);
    });

    it('the assigned client id is the session id: a second connection with it takes the session over', async () => {
      const first = await connectTracked(pool, port, { protocolVersion: 5, clientId: '' });
      const assigned = first.connack.properties.assignedClientIdentifier!;
      const second = await connectTracked(pool, port, { protocolVersion: 5, clientId: assigned, cleanStart: false });
      expect(second.connack.reasonCode).toBe(0);
      expect(second.connack.properties.assignedClientIdentifier).toBeUndefined();
      const got = await first.client.expectClose();
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ type: 14, reasonCode: 0x8e });
    });

    it('[MQTT-3.1.3-8] v3.1.1 zero-length client id without clean session gets CONNACK 0x02, then close', async () => {
      const { client, connack } = await connectTracked(pool, port, { protocolVersion: 4, clientId: '', cleanStart: false });
      expect(connack).toMatchObject({ reasonCode: 0x02, sessionPresent: false });
      expect(await client.expectClose()).toEqual([]);
    });

    it('[MQTT-3.1.3-8] v5 zero-length client id without clean start gets CONNACK 0x85, then close', async () => {
      const { client, connack } = await connectTracked(pool, port, { protocolVersion: 5, clientId: '', cleanStart: false });
      expect(connack).toMatchObject({ reasonCode: 0x85, sessionPresent: false });
      expect(await client.expectClose()).toEqual([]);
    });

    it('MQTT 3.1 (level 3) with a zero-length client id gets CONNACK 0x02, then close', async () => {
      const { client, connack } = await connectTracked(pool, port, { protocolVersion: 3, clientId: '', cleanStart: true });
      expect(connack.reasonCode).toBe(0x02);
      expect(await client.expectClose()).toEqual([]);
    });

    it('a client id of exactly max_clientid_len is accepted', async () => {
      const { connack } = await connectTracked(pool, b.port('tcp.short'), { protocolVersion: 5, clientId: '12345678' });
      expect(connack.reasonCode).toBe(0);
    });

    it('[MQTT-3.1.3-9] v3.1.1 client id longer than max_clientid_len gets CONNACK 0x02, then close', async () => {
      const { client, connack } = await connectTracked(pool, b.port('tcp.short'), { protocolVersion: 4, clientId: '123456789' });
      expect(connack.reasonCode).toBe(0x02);
      expect(await client.expectClose()).toEqual([]);
    });

    it('[MQTT-3.1.3-8] v5 client id longer than max_clientid_len gets CONNACK 0x85, then close', async () => {
      const { client, connack } = await connectTracked(pool, b.port('tcp.short'), { protocolVersion: 5, clientId: '123456789' });
      expect(connack.reasonCode).toBe(0x85);
      expect(await client.expectClose()).toEqual([]);
    });
  });

  describe('keepalive limits', () => {
    for (const keepalive of [9, 101]) {
      it(`v3.1.1 keepalive ${keepalive} outside [10, 100] gets CONNACK 0x02, then close`, async () => {
        const { client, connack } = await connectTracked(pool, b.port('tcp.range'), { protocolVersion: 4, keepalive });
        expect(connack.reasonCode).toBe(0x02);
        expect(await client.expectClose()).toEqual([]);
      });
    }

    for (const keepalive of [10, 100]) {
      it(`v3.1.1 keepalive ${keepalive} on the bounds of [10, 100] is accepted`, async () => {
        const { connack } = await connectTracked(pool, b.port('tcp.range'), { protocolVersion: 4, keepalive });
        expect(connack.reasonCode).toBe(0);
      });
    }

    it('MQTT 3.1 keepalive outside [min, max] gets CONNACK 0x02', async () => {
      const { connack } = await connectTracked(pool, b.port('tcp.range'), { protocolVersion: 3, keepalive: 1000 });
      expect(connack.reasonCode).toBe(0x02);
    });

    it('v3.1.1 keepalive 0 with allow_zero_keepalive=false gets CONNACK 0x02', async () => {
      const { client, connack } = await connectTracked(pool, b.port('tcp.nozero'), { protocolVersion: 4, keepalive: 0 });
      expect(connack.reasonCode).toBe(0x02);
      expect(await client.expectClose()).toEqual([]);
    });

    it('v3.1.1 keepalive 0 is accepted when allow_zero_keepalive is true (default)', async () => {
      const { connack } = await connectTracked(pool, port, { protocolVersion: 4, keepalive: 0 });
      expect(connack.reasonCode).toBe(0);
    });

    it('v5 keepalive above max_keepalive is accepted and lowered: Server Keep Alive = max', async () => {
      const { connack } = await connectTracked(pool, b.port('tcp.range'), { protocolVersion: 5, keepalive: 1000 });
      expect(connack.reasonCode).toBe(0);
      expect(connack.properties.serverKeepAlive).toBe(100);
    });

    it('v5 keepalive below min_keepalive is accepted and raised: Server Keep Alive = min', async () => {
      const { connack } = await connectTracked(pool, b.port('tcp.range'), { protocolVersion: 5, keepalive: 3 });
      expect(connack.reasonCode).toBe(0);
      expect(connack.properties.serverKeepAlive).toBe(10);
    });

    it('v5 keepalive inside [min, max] is announced unchanged as Server Keep Alive', async () => {
      const { connack } = await connectTracked(pool, b.port('tcp.range'), { protocolVersion: 5, keepalive: 50 });
      expect(connack.properties.serverKeepAlive).toBe(50);
    });

    it('v5 keepalive 0 with allow_zero_keepalive=false is accepted with a non-zero Server Keep Alive', async () => {
      const { connack } = await connectTracked(pool, b.port('tcp.nozero'), { protocolVersion: 5, keepalive: 0 });
      expect(connack.reasonCode).toBe(0);
      expect(connack.properties.serverKeepAlive).toBeGreaterThan(0);
    });
  });

  describe('will checks', () => {
    it('[MQTT-3.2.2-12] v5 Will QoS above max_qos_allowed gets CONNACK 0x9B, then close', async () => {
      const { client, connack } = await connectTracked(pool, b.port('tcp.tuned'), { protocolVersion: 5, will: will('w/q', 2) });
      expect(connack.reasonCode).toBe(0x9b);
      expect(await client.expectClose()).toEqual([]);
    });

    it('v3.1.1 Will QoS above max_qos_allowed closes the connection without CONNACK', async () => {
      const client = pool.track(await RawClient.open(b.port('tcp.tuned'), { version: 4 }));
      client.send(RawClient.connectPacket({ protocolVersion: 4, will: will('w/q', 2) }));
      expect(await client.expectClose()).toEqual([]);
    });

    it('a Will QoS equal to max_qos_allowed is accepted', async () => {
      const { connack } = await connectTracked(pool, b.port('tcp.tuned'), { protocolVersion: 5, will: will('w/q', 1) });
      expect(connack.reasonCode).toBe(0);
    });

    it('[MQTT-3.2.2-14] v5 Will Retain without the retainer gets CONNACK 0x9A, then close', async () => {
      const { client, connack } = await connectTracked(pool, port, { protocolVersion: 5, will: will('w/r', 0, true) });
      expect(connack.reasonCode).toBe(0x9a);
      expect(await client.expectClose()).toEqual([]);
    });

    it('v3.1.1 Will Retain without the retainer is accepted', async () => {
      const { connack } = await connectTracked(pool, port, { protocolVersion: 4, will: will('w/r', 0, true) });
      expect(connack.reasonCode).toBe(0);
    });
  });

  describe('clean session and session present', () => {
    async function persistentWithSubscription(version: ProtocolVersion, clientId: string, filter: string): Promise<void> {
      const expiry = version === 5 ? { sessionExpiryInterval: 60 } : {};
      const { client, connack } = await connectTracked(pool, port, { protocolVersion: version, clientId, cleanStart: false, properties: expiry });
      expect(connack.reasonCode).toBe(0);
      await subscribeGranted(client, filter, 1);
      await client.disconnect();
    }

    async function publish(topic: string): Promise<void> {
      const { client } = await connectTracked(pool, port, { protocolVersion: 4, clientId: uid('pub') });
      await client.publish(topic, 'm', { qos: 1, packetId: 7 });
      await client.disconnect();
    }

    it('[MQTT-3.2.2-2] v3.1.1 clean_session=0 reconnect gets session present 1 and keeps the subscriptions', async () => {
      const id = uid('cs-keep');
      await persistentWithSubscription(4, id, 'cs/keep/#');
      const { client, connack } = await connectTracked(pool, port, { protocolVersion: 4, clientId: id, cleanStart: false });
      expect(connack).toMatchObject({ reasonCode: 0, sessionPresent: true });
      await publish('cs/keep/a');
      const msg = await client.expect(3);
      expect(msg).toMatchObject({ topic: 'cs/keep/a', qos: 1 });
      expect(msg.payload.toString()).toBe('m');
    });

    it('[MQTT-3.2.2-1] v3.1.1 clean_session=1 reconnect gets session present 0 and the subscriptions are gone', async () => {
      const id = uid('cs-drop');
      await persistentWithSubscription(4, id, 'cs/drop/#');
      const { client, connack } = await connectTracked(pool, port, { protocolVersion: 4, clientId: id, cleanStart: true });
      expect(connack).toMatchObject({ reasonCode: 0, sessionPresent: false });
      await publish('cs/drop/a');
      expect(await client.expectSilence(300)).toBe(true);
    });

    it('[MQTT-3.2.2-2] v3.1.1 clean_session=0 with no stored session gets session present 0', async () => {
      const { connack } = await connectTracked(pool, port, { protocolVersion: 4, clientId: uid('cs-new'), cleanStart: false });
      expect(connack).toMatchObject({ reasonCode: 0, sessionPresent: false });
    });

    it('a v3.1.1 clean_session=1 session does not outlive its connection', async () => {
      const id = uid('cs-clean');
      const first = await connectTracked(pool, port, { protocolVersion: 4, clientId: id, cleanStart: true });
      await first.client.subscribe({ filter: 'cs/clean', qos: 1 });
      await first.client.disconnect();
      const { connack } = await connectTracked(pool, port, { protocolVersion: 4, clientId: id, cleanStart: false });
      expect(connack.sessionPresent).toBe(false);
    });

    it('[MQTT-3.2.2-3] v5 clean start 0 with Session Expiry > 0 reconnect gets session present 1 and keeps the subscriptions', async () => {
      const id = uid('cs-v5');
      await persistentWithSubscription(5, id, 'cs/v5/#');
      const { client, connack } = await connectTracked(pool, port, { protocolVersion: 5, clientId: id, cleanStart: false, properties: { sessionExpiryInterval: 60 } });
      expect(connack).toMatchObject({ reasonCode: 0, sessionPresent: true });
      await publish('cs/v5/a');
      expect(await client.expect(3)).toMatchObject({ topic: 'cs/v5/a', qos: 1 });
    });
  });
});

describe('CONNECT with the retainer', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker({ plugins: [retainer] });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('v5 CONNACK leaves Retain Available out (retained messages are supported)', async () => {
    const { connack } = await connectTracked(pool, b.port(), { protocolVersion: 5 });
    expect(connack.reasonCode).toBe(0);
    expect(connack.properties.retainAvailable).toBeUndefined();
    expect(connack.properties.serverKeepAlive).toBe(60);
  });

  it('v5 Will Retain is accepted', async () => {
    const { connack } = await connectTracked(pool, b.port(), { protocolVersion: 5, will: will('w/r', 0, true) });
    expect(connack.reasonCode).toBe(0);
  });
});

describe('authentication outcome', () => {
  describe('without any auth plugin', () => {
    let b: TestBroker;
    beforeAll(async () => {
      b = await startBroker({ listeners: { 'tcp.closed': { allow_anonymous: false }, 'tcp.open': {} } });
    });
    afterAll(async () => {
      await b?.stop();
    });

    it('allow_anonymous=false: a v5 client without credentials gets CONNACK 0x87, then close', async () => {
      const { client, connack } = await connectTracked(pool, b.port('tcp.closed'), { protocolVersion: 5 });
      expect(connack.reasonCode).toBe(0x87);
      expect(await client.expectClose()).toEqual([]);
    });

    it('allow_anonymous=false: a v3.1.1 client without credentials gets CONNACK 0x05, then close', async () => {
      const { client, connack } = await connectTracked(pool, b.port('tcp.closed'), { protocolVersion: 4 });
      expect(connack.reasonCode).toBe(0x05);
      expect(await client.expectClose()).toEqual([]);
    });

    it('allow_anonymous=false: a client with a username that no handler decides on is refused (0x87)', async () => {
      const { connack } = await connectTracked(pool, b.port('tcp.closed'), { protocolVersion: 5, username: 'someone', password: Buffer.from('pw') });
      expect(connack.reasonCode).toBe(0x87);
    });

    it('allow_anonymous is per listener: the other listener accepts the same client', async () => {
      const { connack } = await connectTracked(pool, b.port('tcp.open'), { protocolVersion: 5 });
      expect(connack.reasonCode).toBe(0);
    });
  });

  describe('with a client.authenticate plugin', () => {
    let b: TestBroker;
    const seen: ConnectInfo[] = [];
    // alice/secret: allowed; bob: denied; an anonymous client whose id starts with "deny-": denied; anyone else: no decision
    const auth = definePlugin({
      name: 'test-auth',
      apiVersion: '^1.0.0',
      create(ctx) {
        return {
          init() {
            ctx.hooks.on('client.authenticate', async ({ connectInfo }) => {
              seen.push(connectInfo);
              await new Promise((r) => setImmediate(r));
              if (connectInfo.username === 'alice' && connectInfo.password?.toString() === 'secret') return { result: { result: 'allow' }, proceed: false };
              if (connectInfo.username === 'bob') return { result: { result: 'deny' }, proceed: false };
              if (connectInfo.username === undefined && connectInfo.clientId.startsWith('deny-')) return { result: { result: 'deny' }, proceed: false };
              return undefined;
            });
          },
        };
      },
    });
    beforeAll(async () => {
      b = await startBroker({ plugins: [auth], listeners: { 'tcp.closed': { allow_anonymous: false }, 'tcp.open': {} } });
    });
    afterAll(async () => {
      await b?.stop();
    });

    for (const version of [4, 5] as const) {
      it(`a handler that allows lets a v${version} client in on an allow_anonymous=false listener`, async () => {
        const { connack } = await connectTracked(pool, b.port('tcp.closed'), { protocolVersion: version, username: 'alice', password: Buffer.from('secret') });
        expect(connack.reasonCode).toBe(0);
      });
    }

    it('a handler that denies refuses a v5 client with CONNACK 0x86, then close', async () => {
      const { client, connack } = await connectTracked(pool, b.port('tcp.closed'), { protocolVersion: 5, username: 'bob', password: Buffer.from('x') });
      expect(connack.reasonCode).toBe(0x86);
      expect(await client.expectClose()).toEqual([]);
    });

    it('a handler that denies refuses a v3.1.1 client with CONNACK 0x04, then close', async () => {
      const { client, connack } = await connectTracked(pool, b.port('tcp.closed'), { protocolVersion: 4, username: 'bob', password: Buffer.from('x') });
      expect(connack.reasonCode).toBe(0x04);
      expect(await client.expectClose()).toEqual([]);
    });

    it('a handler that denies wins over allow_anonymous=true', async () => {
      const { connack } = await connectTracked(pool, b.port('tcp.open'), { protocolVersion: 5, username: 'bob', password: Buffer.from('x') });
      expect(connack.reasonCode).toBe(0x86);
    });

    it('a client without a username still goes through client.authenticate', async () => {
      const clientId = uid('anon');
      const { connack } = await connectTracked(pool, b.port('tcp.open'), { protocolVersion: 4, clientId });
      expect(connack.reasonCode).toBe(0);
      const info = seen.find((i) => i.clientId === clientId);
      expect(info).toBeDefined();
      expect(info!.username).toBeUndefined();
    });

    it('a client without a username is refused when the handler denies it, even with allow_anonymous=true', async () => {
      const { connack } = await connectTracked(pool, b.port('tcp.open'), { protocolVersion: 5, clientId: uid('deny') });
      expect(connack.reasonCode).toBe(0x86);
    });

    it('no decision: allow_anonymous=true accepts a client with a username', async () => {
      const { connack } = await connectTracked(pool, b.port('tcp.open'), { protocolVersion: 5, username: 'carol', password: Buffer.from('pw') });
      expect(connack.reasonCode).toBe(0);
    });

    it('no decision: allow_anonymous=false refuses a client with a username (0x87)', async () => {
      const { connack } = await connectTracked(pool, b.port('tcp.closed'), { protocolVersion: 5, username: 'carol', password: Buffer.from('pw') });
      expect(connack.reasonCode).toBe(0x87);
    });

    it('no decision: allow_anonymous=false refuses a v3.1.1 client without credentials (0x05)', async () => {
      const { connack } = await connectTracked(pool, b.port('tcp.closed'), { protocolVersion: 4 });
      expect(connack.reasonCode).toBe(0x05);
    });
  });
});

describe('mqtt.max_sessions', () => {
  let b: TestBroker;
  let port: number;
  let holder: RawClient;
  beforeAll(async () => {
    b = await startBroker({ config: { 'mqtt.max_sessions': 2 } });
    port = b.port();
    // one offline persistent session and one connected session: the node is full
    const offline = await RawClient.connect(port, { protocolVersion: 4, clientId: 'ms-offline', cleanStart: false });
    expect(offline.connack.reasonCode).toBe(0);
    await offline.client.disconnect();
    const online = await RawClient.connect(port, { protocolVersion: 5, clientId: 'ms-online' });
    expect(online.connack.reasonCode).toBe(0);
    holder = online.client;
  });
  afterAll(async () => {
    holder?.destroy();
    await b?.stop();
  });

  it('a new v5 client id beyond max_sessions gets CONNACK 0x88, then close (counted as client.connack.unavailable.error)', async () => {
    const before = b.broker.metrics.get('client.connack.unavailable.error');
    const { client, connack } = await connectTracked(pool, port, { protocolVersion: 5, clientId: 'ms-new5' });
    expect(connack.reasonCode).toBe(0x88);
    expect(await client.expectClose()).toEqual([]);
    expect(b.broker.metrics.get('client.connack.unavailable.error')).toBe(before + 1);
  });

  it('a new v3.1.1 client id beyond max_sessions gets CONNACK 0x03, then close', async () => {
    const { client, connack } = await connectTracked(pool, port, { protocolVersion: 4, clientId: 'ms-new4' });
    expect(connack.reasonCode).toBe(0x03);
    expect(await client.expectClose()).toEqual([]);
  });

  it('an existing offline session may reconnect while the node is full', async () => {
    const { client, connack } = await connectTracked(pool, port, { protocolVersion: 4, clientId: 'ms-offline', cleanStart: false });
    expect(connack).toMatchObject({ reasonCode: 0, sessionPresent: true });
    await client.disconnect();
  });

  it('a connected client id may connect again (takeover) while the node is full', async () => {
    // not tracked: the new connection holds the session from now on, and afterAll closes it
    const { client, connack } = await RawClient.connect(port, { protocolVersion: 5, clientId: 'ms-online' });
    holder.destroy();
    holder = client;
    expect(connack.reasonCode).toBe(0);
  });
});
