/**
 * MQTT 5 properties end to end: message properties passed through unchanged, message expiry, CONNACK
 * values (Assigned Client Identifier, Server Keep Alive, Receive Maximum), Request Problem
 * Information, properties whose value may not be 0, enhanced authentication and flow control.
 * Raw clients where the bytes matter, mqtt.js for the request/response behaviour.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { definePlugin } from '@rmqtt-ts/plugin-api';
import type { Packet, PublishPacket } from '@rmqtt-ts/kernel';
import { RawClient, RawClientPool, connectClient, connectTracked, denyPublishTo, endClient, publishPacket, recorder, startBroker, subscribeGranted, uniqueId, type RawConnectOptions, type TestBroker } from '@rmqtt-ts/testkit';

// ---- test plugins ----

/** Refuses every publish to `denied/...`, so that PUBACK carries a failure code. */
const denyPublish = denyPublishTo('denied/');

/**
 * Method TWO-STEP: the client opens with "hello", is challenged ("challenge", AUTH 0x18), answers
 * "answer" and is accepted with "welcome". Re-authentication succeeds with "again".
 */
const twoStepAuth = definePlugin({
  name: 'test-two-step-auth',
  apiVersion: '^1.0.0',
  create(ctx) {
    return {
      init() {
        ctx.hooks.on('client.enhancedAuth', (e) => {
          if (e.method !== 'TWO-STEP') return undefined;
          const data = e.data?.toString();
          if (e.reauthenticate) return { result: { reasonCode: data === 'again' ? 0x00 : 0x87 }, proceed: false };
          if (data === 'hello') return { result: { reasonCode: 0x18, data: Buffer.from('challenge') }, proceed: false };
          if (data === 'answer') return { result: { reasonCode: 0x00, data: Buffer.from('welcome') }, proceed: false };
          return { result: { reasonCode: 0x87 }, proceed: false };
        });
      },
    };
  },
});

// ---- helpers ----

const pool = new RawClientPool();
const mqtts: MqttClient[] = [];

/** A v5 client unless told; the CONNACK whatever its reason code. */
const connectRaw = (port: number, options: RawConnectOptions = {}) => connectTracked(pool, port, { protocolVersion: 5, ...options });
/** A connected v5 raw client (CONNACK 0x00 required). */
const rawClient = (port: number, options: RawConnectOptions = {}): Promise<RawClient> => pool.connect(port, { protocolVersion: 5, ...options });

async function openRaw(port: number): Promise<RawClient> {
  return pool.track(await RawClient.open(port, { version: 5 }));
}

async function mqttClient(url: string, options: Parameters<typeof connectClient>[1] = {}): Promise<MqttClient> {
  const c = await connectClient(url, options);
  mqtts.push(c);
  return c;
}

/** A v5 subscriber whose session outlives its connection, subscribed at QoS 1 and then disconnected. */
async function offlineSubscriber(port: number, filter: string): Promise<string> {
  const clientId = uniqueId('offline');
  const c = await rawClient(port, { clientId, properties: { sessionExpiryInterval: 60 } });
  await subscribeGranted(c, filter, 1);
  await c.disconnect();
  return clientId;
}

async function resume(port: number, clientId: string): Promise<RawClient> {
  const { client, connack } = await connectRaw(port, { clientId, cleanStart: false, properties: { sessionExpiryInterval: 60 } });
  expect(connack.reasonCode).toBe(0);
  expect(connack.sessionPresent).toBe(true);
  return client;
}

afterEach(async () => {
  pool.destroyAll();
  await Promise.all(mqtts.splice(0).map((c) => endClient(c, true)));
});

describe('MQTT 5 properties', () => {
  let b: TestBroker;
  let port: number;

  beforeAll(async () => {
    b = await startBroker({
      plugins: [denyPublish],
      listeners: {
        'tcp.external': {},
        'tcp.ka': { min_keepalive: 10, max_keepalive: 30 },
        'tcp.kashort': { max_keepalive: 1 },
        'tcp.flow': { max_inflight: 4 },
        'tcp.expiry': { message_expiry_interval: '1s' },
      },
    });
    port = b.port('tcp.external');
  });
  afterAll(async () => {
    await b?.stop();
  });

  describe('message properties pass through', () => {
    it('[MQTT-3.3.2-4] Payload Format Indicator reaches every v5 subscriber unchanged', async () => {
      // one subscriber shares the once-encoded bytes, the other (with a Subscription Identifier) gets its own encoding
      const shared = await rawClient(port);
      const own = await rawClient(port);
      await subscribeGranted(shared, 'pfi/t');
      await subscribeGranted(own, 'pfi/t', 0, { subscriptionIdentifiers: [7] });
      const pub = await rawClient(port);
      pub.send(publishPacket('pfi/t', 'text', { properties: { payloadFormatIndicator: 1 } }));
      pub.send(publishPacket('pfi/t', Buffer.from([0xff, 0x00]), { properties: { payloadFormatIndicator: 0 } }));

      const s1 = await shared.expect(3);
      const s2 = await shared.expect(3);
      expect(s1.properties).toEqual({ payloadFormatIndicator: 1 });
      expect(s1.payload.toString()).toBe('text');
      expect(s2.properties).toEqual({ payloadFormatIndicator: 0 });
      expect(s2.payload).toEqual(Buffer.from([0xff, 0x00]));
      const o1 = await own.expect(3);
      const o2 = await own.expect(3);
      expect(o1.properties).toEqual({ payloadFormatIndicator: 1, subscriptionIdentifiers: [7] });
      expect(o2.properties).toEqual({ payloadFormatIndicator: 0, subscriptionIdentifiers: [7] });
    });

    it('[MQTT-3.3.2-20] Content Type reaches every v5 subscriber unchanged', async () => {
      const shared = await rawClient(port);
      const own = await rawClient(port);
      await subscribeGranted(shared, 'ct/t');
      await subscribeGranted(own, 'ct/t', 0, { subscriptionIdentifiers: [9] });
      const pub = await rawClient(port);
      pub.send(publishPacket('ct/t', '{"a":1}', { properties: { contentType: 'application/json; charset=utf-8' } }));

      expect((await shared.expect(3)).properties).toEqual({ contentType: 'application/json; charset=utf-8' });
      expect((await own.expect(3)).properties).toEqual({ contentType: 'application/json; charset=utf-8', subscriptionIdentifiers: [9] });
    });

    it('a v3.1.1 subscriber gets the message without any property bytes', async () => {
      const v3 = await pool.connect(port, { protocolVersion: 4, clientId: uniqueId('v3') });
      await v3.subscribe('pfi/v3');
      const pub = await rawClient(port);
      pub.send(
        publishPacket('pfi/v3', 'plain', {
          properties: {
            payloadFormatIndicator: 1,
            contentType: 'text/plain',
            responseTopic: 'r/t',
            correlationData: Buffer.from('c'),
            userProperties: [['k', 'v']],
            messageExpiryInterval: 60,
          },
        }),
      );
      const m = await v3.expect(3);
      expect(m.topic).toBe('pfi/v3');
      // a v3.1.1 PUBLISH has no property field: anything written there would show up as payload
      expect(m.payload.toString()).toBe('plain');
      expect(m.properties).toEqual({});
    });

    it('[MQTT-3.3.2-15] [MQTT-3.3.2-16] Response Topic and Correlation Data carry a request/response round trip', async () => {
      const url = b.url('tcp.external');
      const requester = await mqttClient(url, { protocolVersion: 5, clientId: uniqueId('requester') });
      const responder = await mqttClient(url, { protocolVersion: 5, clientId: uniqueId('responder') });
      const responseTopic = `rr/response/${uniqueId('r')}`;
      await requester.subscribeAsync(responseTopic, { qos: 1 });
      await responder.subscribeAsync('rr/request', { qos: 1 });
      const requests = recorder(responder);
      const responses = recorder(requester);

      const correlationData = Buffer.from([0x00, 0x01, 0xfe, 0xff]);
      await requester.publishAsync('rr/request', 'what time is it', { qos: 1, properties: { responseTopic, correlationData } });
      const req = await requests.next();
      expect(req.packet.properties?.responseTopic).toBe(responseTopic);
      expect(req.packet.properties?.correlationData).toEqual(correlationData);

      await responder.publishAsync(req.packet.properties!.responseTopic!, 'noon', {
        qos: 1,
        properties: { correlationData: req.packet.properties!.correlationData! },
      });
      const res = await responses.next();
      expect(res.topic).toBe(responseTopic);
      expect(res.payload.toString()).toBe('noon');
      expect(res.packet.properties?.correlationData).toEqual(correlationData);
    });

    it('[MQTT-3.3.2-17] [MQTT-3.3.2-18] User Properties arrive in order with duplicates kept', async () => {
      const sub = await rawClient(port);
      await subscribeGranted(sub, 'up/t', 1);
      const pub = await rawClient(port);
      const userProperties: [string, string][] = [
        ['a', '1'],
        ['b', '2'],
        ['a', '3'],
      ];
      await pub.publish('up/t', 'x', { qos: 1, properties: { userProperties } });
      const m = await sub.expect(3);
      expect(m.properties).toEqual({ userProperties });
    });
  });

  describe('message expiry', () => {
    it('[MQTT-3.3.2-6] a queued message is forwarded with the expiry interval it has left', async () => {
      const clientId = await offlineSubscriber(port, 'exp/left');
      const pub = await rawClient(port);
      await pub.publish('exp/left', 'soon stale', { qos: 1, properties: { messageExpiryInterval: 5 } });
      // the broker stamped the message before the PUBACK: more than 2 s and well under 3 s pass before
      // delivery, so 5 − (2..3) s rounded up is 3
      await sleep(2100);
      const sub = await resume(port, clientId);
      const m = await sub.expect(3);
      expect(m.topic).toBe('exp/left');
      expect(m.properties.messageExpiryInterval).toBe(3);
    });

    it('[MQTT-3.3.2-5] a message that expires while queued is not delivered and counts as dropped', async () => {
      const clientId = await offlineSubscriber(port, 'exp/gone');
      const pub = await rawClient(port);
      await pub.publish('exp/gone', 'stale', { qos: 1, properties: { messageExpiryInterval: 1 } });
      const dropped = b.broker.metrics.get('messages.dropped');
      const expired = b.broker.metrics.get('messages.dropped.expired');
      await sleep(1500);
      const sub = await resume(port, clientId);
      expect(await sub.expectSilence(300)).toBe(true);
      expect(b.broker.metrics.get('messages.dropped')).toBe(dropped + 1);
      expect(b.broker.metrics.get('messages.dropped.expired')).toBe(expired + 1);
    });

    it('a v5 PUBLISH without Message Expiry Interval is forwarded without one', async () => {
      const sub = await rawClient(port);
      await subscribeGranted(sub, 'exp/none', 1);
      const pub = await rawClient(b.port('tcp.expiry'));
      await pub.publish('exp/none', 'forever', { qos: 1 });
      const m = await sub.expect(3);
      expect(m.properties).toEqual({});
    });

    it("the listener's message_expiry_interval is never written into an outgoing PUBLISH", async () => {
      const sub = await rawClient(port);
      await subscribeGranted(sub, 'exp/v3', 1);
      const v3 = await pool.connect(b.port('tcp.expiry'), { protocolVersion: 4, clientId: uniqueId('v3pub') });
      await v3.publish('exp/v3', 'from v3', { qos: 1 });
      const m = await sub.expect(3);
      expect(m.payload.toString()).toBe('from v3');
      expect(m.properties).toEqual({});
    });

    it("a v3 publisher's message queued longer than message_expiry_interval is dropped", async () => {
      const clientId = await offlineSubscriber(port, 'exp/v3old');
      const v3 = await pool.connect(b.port('tcp.expiry'), { protocolVersion: 4, clientId: uniqueId('v3pub') });
      await v3.publish('exp/v3old', 'old', { qos: 1 });
      const dropped = b.broker.metrics.get('messages.dropped');
      await sleep(1600);
      const sub = await resume(port, clientId);
      expect(await sub.expectSilence(300)).toBe(true);
      expect(b.broker.metrics.get('messages.dropped')).toBe(dropped + 1);
    });

    it('a v5 message without expiry queued longer than message_expiry_interval is still delivered', async () => {
      const clientId = await offlineSubscriber(port, 'exp/v5old');
      const pub = await rawClient(b.port('tcp.expiry'));
      await pub.publish('exp/v5old', 'kept', { qos: 1 });
      await sleep(1600);
      const sub = await resume(port, clientId);
      const m = await sub.expect(3);
      expect(m.payload.toString()).toBe('kept');
      expect(m.properties).toEqual({});
    });
  });

  describe('CONNACK values', () => {
    it('[MQTT-3.2.2-16] an empty client id gets a fresh Assigned Client Identifier', async () => {
      const a = await connectRaw(port, { clientId: '' });
      const c = await connectRaw(port, { clientId: '' });
      expect(a.connack.reasonCode).toBe(0);
      expect(c.connack.reasonCode).toBe(0);
      const idA = a.connack.properties.assignedClientIdentifier;
      const idC = c.connack.properties.assignedClientIdentifier;
      expect(typeof idA).toBe('string');
      expect(idA!.length).toBeGreaterThan(0);
      expect(idC).not.toBe(idA);
    });

    it('[MQTT-3.1.3-7] the Assigned Client Identifier is the id the session runs under', async () => {
      const a = await connectRaw(port, { clientId: '' });
      const assigned = a.connack.properties.assignedClientIdentifier!;
      // connecting under that id takes the first connection over
      await rawClient(port, { clientId: assigned });
      const d = await a.client.expect(14);
      expect(d.reasonCode).toBe(0x8e);
    });

    it('a client that names itself gets no Assigned Client Identifier', async () => {
      const { connack } = await connectRaw(port, { clientId: uniqueId('named') });
      expect(connack.reasonCode).toBe(0);
      expect(connack.properties.assignedClientIdentifier).toBeUndefined();
    });

    it('Server Keep Alive lowers a keepalive above max_keepalive', async () => {
      const { connack } = await connectRaw(b.port('tcp.ka'), { keepalive: 100 });
      expect(connack.properties.serverKeepAlive).toBe(30);
    });

    it('Server Keep Alive raises a keepalive below min_keepalive', async () => {
      const { connack } = await connectRaw(b.port('tcp.ka'), { keepalive: 5 });
      expect(connack.properties.serverKeepAlive).toBe(10);
    });

    it('Server Keep Alive repeats a keepalive within the limits', async () => {
      const { connack } = await connectRaw(b.port('tcp.ka'), { keepalive: 20 });
      expect(connack.properties.serverKeepAlive).toBe(20);
    });

    it('the broker times a v5 client out by the Server Keep Alive it sent, not the one asked for', async () => {
      const start = Date.now();
      const { client, connack } = await connectRaw(b.port('tcp.kashort'), { keepalive: 60 });
      expect(connack.properties.serverKeepAlive).toBe(1);
      // 1 s × keepalive_backoff 0.75 × 2 = 1.5 s of silence, found by a sweep that runs every second
      const got = await client.expectClose(4000);
      expect(Date.now() - start).toBeGreaterThanOrEqual(1400);
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ type: 14, reasonCode: 0x8d });
    });
  });

  describe('Request Problem Information', () => {
    it('[MQTT-3.1.2-29] with Request Problem Information 0 a refused PUBACK carries no Reason String', async () => {
      const c = await rawClient(port, { properties: { requestProblemInformation: 0 } });
      const ack = (await c.publish('denied/quiet', 'x', { qos: 1 }))!;
      expect(ack.reasonCode).toBe(0x87);
      expect(ack.properties).toEqual({});
    });

    it('with Request Problem Information 1 (the default) a refused PUBACK carries a Reason String', async () => {
      const c = await rawClient(port);
      const ack = (await c.publish('denied/loud', 'x', { qos: 1 }))!;
      expect(ack.reasonCode).toBe(0x87);
      expect(typeof ack.properties.reasonString).toBe('string');
      expect(ack.properties.reasonString!.length).toBeGreaterThan(0);
    });

    it('[MQTT-3.1.2-29] Request Problem Information 0 still allows a Reason String on a refusing CONNACK', async () => {
      const { connack } = await connectRaw(port, { clientId: '', cleanStart: false, properties: { requestProblemInformation: 0 } });
      expect(connack.reasonCode).toBe(0x85);
      expect(typeof connack.properties.reasonString).toBe('string');
      expect(connack.properties.reasonString!.length).toBeGreaterThan(0);
    });

    it('[MQTT-3.1.2-29] Request Problem Information 0 still allows a Reason String on DISCONNECT', async () => {
      const c = await rawClient(port, { properties: { requestProblemInformation: 0 } });
      // tcp.external allows no topic aliases, so any alias is a protocol violation
      c.send(publishPacket('rpi/alias', 'x', { properties: { topicAlias: 1 } }));
      const got = await c.expectClose();
      expect(got).toHaveLength(1);
      const d = got[0] as Extract<Packet, { type: 14 }>;
      expect(d.type).toBe(14);
      expect(d.reasonCode).toBe(0x94);
      expect(typeof d.properties.reasonString).toBe('string');
      expect(d.properties.reasonString!.length).toBeGreaterThan(0);
    });

    it('Reason Strings appear only with failure codes', async () => {
      const { client: c, connack } = await connectRaw(port);
      expect(connack.reasonCode).toBe(0);
      expect(connack.properties.reasonString).toBeUndefined();

      const sub = await rawClient(port);
      const suback = await sub.subscribe({ filter: 'rs/ok', qos: 1 });
      expect(suback.reasonCodes).toEqual([1]);
      expect(suback.properties).toEqual({});

      const noSubscribers = (await c.publish('rs/nobody', 'x', { qos: 1 }))!;
      expect(noSubscribers.reasonCode).toBe(0x10);
      expect(noSubscribers.properties).toEqual({});

      const delivered = (await c.publish('rs/ok', 'x', { qos: 1 }))!;
      expect(delivered.reasonCode).toBe(0x00);
      expect(delivered.properties).toEqual({});
      expect((await sub.expect(3)).topic).toBe('rs/ok');
    });

    it("[MQTT-3.4.2-2] a Reason String that would exceed the client's Maximum Packet Size is left out", async () => {
      // PUBACK 0x87 alone is 5 bytes; any Reason String takes it past 12
      const c = await rawClient(port, { properties: { maximumPacketSize: 12 } });
      const ack = (await c.publish('denied/small', 'x', { qos: 1 }))!;
      expect(ack.reasonCode).toBe(0x87);
      expect(ack.properties).toEqual({});
    });
  });

  describe('properties that may not be 0', () => {
    it('Subscription Identifier 0 in SUBSCRIBE gets DISCONNECT 0x82', async () => {
      const c = await rawClient(port);
      // built by hand: the codec refuses to encode an identifier of 0
      // SUBSCRIBE id 1, properties [0x0B 0x00], filter "a", options QoS 0
      c.send([0x82, 0x09, 0x00, 0x01, 0x02, 0x0b, 0x00, 0x00, 0x01, 0x61, 0x00]);
      const got = await c.expectClose();
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ type: 14, reasonCode: 0x82 });
    });

    it('Receive Maximum 0 in CONNECT gets CONNACK 0x82', async () => {
      const c = await openRaw(port);
      c.send(RawClient.connectPacket({ protocolVersion: 5, properties: { receiveMaximum: 0 } }));
      const got = await c.expectClose();
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ type: 2, reasonCode: 0x82, sessionPresent: false });
    });

    it('Maximum Packet Size 0 in CONNECT gets CONNACK 0x82', async () => {
      const c = await openRaw(port);
      c.send(RawClient.connectPacket({ protocolVersion: 5, properties: { maximumPacketSize: 0 } }));
      const got = await c.expectClose();
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ type: 2, reasonCode: 0x82, sessionPresent: false });
    });
  });

  describe('enhanced authentication without a handler', () => {
    it('[MQTT-4.12.0-1] an Authentication Method no plugin handles gets CONNACK 0x8C and a close', async () => {
      const c = await openRaw(port);
      c.send(RawClient.connectPacket({ protocolVersion: 5, properties: { authenticationMethod: 'SCRAM-SHA-1', authenticationData: Buffer.from('n,,n=user') } }));
      const got = await c.expectClose();
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ type: 2, reasonCode: 0x8c, sessionPresent: false });
    });
  });

  describe('flow control', () => {
    it("CONNACK Receive Maximum is the listener's max_inflight whatever the client sends", async () => {
      const low = await connectRaw(b.port('tcp.flow'), { properties: { receiveMaximum: 2 } });
      const high = await connectRaw(b.port('tcp.flow'), { properties: { receiveMaximum: 1000 } });
      const none = await connectRaw(b.port('tcp.flow'));
      expect(low.connack.properties.receiveMaximum).toBe(4);
      expect(high.connack.properties.receiveMaximum).toBe(4);
      expect(none.connack.properties.receiveMaximum).toBe(4);
    });

    it("[MQTT-3.3.4-9] the broker keeps no more QoS 1 messages unacknowledged than the client's Receive Maximum", async () => {
      const sub = await rawClient(b.port('tcp.flow'), { properties: { receiveMaximum: 2 } });
      await subscribeGranted(sub, 'flow/rm', 1);
      const pub = await rawClient(port);
      for (let i = 1; i <= 4; i++) await pub.publish('flow/rm', `m${i}`, { qos: 1 });

      const first = await sub.expect(3);
      const second = await sub.expect(3);
      expect([first.payload.toString(), second.payload.toString()]).toEqual(['m1', 'm2']);
      expect(await sub.expectSilence(300)).toBe(true);
      sub.send({ type: 4, packetId: first.packetId!, reasonCode: 0, properties: {} });
      expect((await sub.expect(3)).payload.toString()).toBe('m3');
      expect(await sub.expectSilence(300)).toBe(true);
      sub.send({ type: 4, packetId: second.packetId!, reasonCode: 0, properties: {} });
      expect((await sub.expect(3)).payload.toString()).toBe('m4');
    });

    it("the listener's max_inflight caps what the broker sends when the client's Receive Maximum is larger", async () => {
      const sub = await rawClient(b.port('tcp.flow'), { properties: { receiveMaximum: 100 } });
      await subscribeGranted(sub, 'flow/cap', 1);
      const pub = await rawClient(port);
      for (let i = 1; i <= 6; i++) await pub.publish('flow/cap', `m${i}`, { qos: 1 });
      const got: PublishPacket[] = [];
      for (let i = 0; i < 4; i++) got.push(await sub.expect(3));
      expect(got.map((p) => p.payload.toString())).toEqual(['m1', 'm2', 'm3', 'm4']);
      expect(await sub.expectSilence(300)).toBe(true);
      sub.send({ type: 4, packetId: got[0]!.packetId!, reasonCode: 0, properties: {} });
      expect((await sub.expect(3)).payload.toString()).toBe('m5');
    });

    it("a v5 client that sends more unacknowledged QoS 2 messages than the broker's Receive Maximum gets DISCONNECT 0x93", async () => {
      const c = await rawClient(b.port('tcp.flow'));
      // no PUBREL: each of these stays unfinished
      for (let i = 1; i <= 4; i++) {
        c.send(publishPacket('flow/in', `m${i}`, { qos: 2, packetId: i }));
        expect(await c.expect(5)).toMatchObject({ packetId: i });
      }
      c.send(publishPacket('flow/in', 'one too many', { qos: 2, packetId: 5 }));
      const got = await c.expectClose();
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ type: 14, reasonCode: 0x93 });
    });
  });
});

describe('enhanced authentication through client.enhancedAuth', () => {
  let b: TestBroker;
  let port: number;

  beforeAll(async () => {
    b = await startBroker({ plugins: [twoStepAuth] });
    port = b.port();
  });
  afterAll(async () => {
    await b?.stop();
  });

  /** Runs the TWO-STEP exchange up to CONNACK. */
  async function authenticate(c: RawClient): Promise<Extract<Packet, { type: 2 }>> {
    c.send(RawClient.connectPacket({ protocolVersion: 5, clientId: uniqueId('auth'), properties: { authenticationMethod: 'TWO-STEP', authenticationData: Buffer.from('hello') } }));
    const challenge = await c.expect(15);
    expect(challenge.reasonCode).toBe(0x18);
    c.send({ type: 15, reasonCode: 0x18, properties: { authenticationMethod: 'TWO-STEP', authenticationData: Buffer.from('answer') } });
    return c.expect(2);
  }

  it('[MQTT-4.12.0-2] a method that needs more data is answered with AUTH 0x18 carrying the method and data', async () => {
    const c = await openRaw(port);
    c.send(RawClient.connectPacket({ protocolVersion: 5, properties: { authenticationMethod: 'TWO-STEP', authenticationData: Buffer.from('hello') } }));
    const auth = await c.expect(15);
    expect(auth.reasonCode).toBe(0x18);
    expect(auth.properties.authenticationMethod).toBe('TWO-STEP');
    expect(auth.properties.authenticationData).toEqual(Buffer.from('challenge'));
  });

  it('[MQTT-4.12.0-5] the completed exchange ends with CONNACK 0x00 carrying the method', async () => {
    const c = await openRaw(port);
    const connack = await authenticate(c);
    expect(connack.reasonCode).toBe(0);
    expect(connack.properties.authenticationMethod).toBe('TWO-STEP');
    expect(connack.properties.authenticationData).toEqual(Buffer.from('welcome'));
    // and the connection works
    c.send({ type: 12 });
    await c.expect(13);
  });

  it('[MQTT-4.12.0-4] a wrong answer during the exchange is refused with CONNACK 0x87 and a close', async () => {
    const c = await openRaw(port);
    c.send(RawClient.connectPacket({ protocolVersion: 5, properties: { authenticationMethod: 'TWO-STEP', authenticationData: Buffer.from('hello') } }));
    await c.expect(15);
    c.send({ type: 15, reasonCode: 0x18, properties: { authenticationMethod: 'TWO-STEP', authenticationData: Buffer.from('wrong') } });
    const got = await c.expectClose();
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ type: 2, reasonCode: 0x87, sessionPresent: false });
  });

  it('[MQTT-4.12.0-1] a method no handler decides on still gets CONNACK 0x8C', async () => {
    const c = await openRaw(port);
    c.send(RawClient.connectPacket({ protocolVersion: 5, properties: { authenticationMethod: 'OTHER' } }));
    const got = await c.expectClose();
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ type: 2, reasonCode: 0x8c });
  });

  it('[MQTT-4.12.1-1] re-authentication with AUTH 0x19 is answered by AUTH 0x00 with the method', async () => {
    const c = await openRaw(port);
    expect((await authenticate(c)).reasonCode).toBe(0);
    c.send({ type: 15, reasonCode: 0x19, properties: { authenticationMethod: 'TWO-STEP', authenticationData: Buffer.from('again') } });
    const auth = await c.expect(15);
    expect(auth.reasonCode).toBe(0x00);
    expect(auth.properties.authenticationMethod).toBe('TWO-STEP');
    // still connected after re-authentication
    c.send({ type: 12 });
    await c.expect(13);
  });
});
