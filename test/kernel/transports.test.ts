/**
 * Transports (SPEC section 1, "Transports"): TCP, TLS, mutual TLS, WebSocket and WebSocket over TLS,
 * several listeners of each type at once, and PROXY protocol v1/v2. Certificates are generated with
 * openssl into a temporary directory when the file starts (testkit's makePki).
 */
import { connect as netConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import WebSocket from 'ws';
import { Decoder, encode, type Packet } from '@rmqtt-ts/kernel';
import { definePlugin, type ConnectInfo } from '@rmqtt-ts/plugin-api';
import { RawClient, RawClientPool, connectClient, endClient, makePki, recorder, startBroker, uniqueId, type Pki, type TestBroker } from '@rmqtt-ts/testkit';

// ---- helpers ----

/** A message published on one client arrives at the other. */
async function roundTrip(pub: MqttClient, sub: MqttClient, topic: string): Promise<void> {
  const rec = recorder(sub);
  await sub.subscribeAsync(topic, { qos: 1 });
  await pub.publishAsync(topic, `via ${topic}`, { qos: 1 });
  const m = await rec.next();
  expect(m.topic).toBe(topic);
  expect(m.payload.toString()).toBe(`via ${topic}`);
}

/** Raw MQTT over a WebSocket: binary frames in, decoded packets out. */
class WsRaw {
  readonly ws: WebSocket;
  readonly #decoder = new Decoder({ maxPacketSize: 0 });
  readonly #packets: Packet[] = [];
  readonly #waiters: (() => void)[] = [];
  closed = false;
  readonly closedP: Promise<void>;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.#decoder.protocolVersion = 4;
    ws.on('message', (data: Buffer) => {
      this.#decoder.push(data);
      for (let p = this.#decoder.next(); p !== null; p = this.#decoder.next()) this.#packets.push(p);
      for (const w of this.#waiters.splice(0)) w();
    });
    this.closedP = new Promise((resolve) =>
      ws.on('close', () => {
        this.closed = true;
        for (const w of this.#waiters.splice(0)) w();
        resolve();
      }),
    );
  }

  /** Resolves when the upgrade succeeds; rejects with the HTTP status when it is refused. */
  static open(url: string, protocols: string[] | undefined, options: WebSocket.ClientOptions = {}): Promise<WsRaw> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols, options);
      ws.once('open', () => resolve(new WsRaw(ws)));
      ws.once('unexpected-response', (_req, res) => {
        reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { statusCode: res.statusCode }));
        ws.terminate();
      });
      ws.once('error', reject);
    });
  }

  send(bytes: Buffer): void {
    this.ws.send(bytes, { binary: true });
  }

  async next(timeoutMs = 2000): Promise<Packet | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.#packets.length === 0) {
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no packet within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.#packets.shift()!;
  }

  close(): void {
    this.ws.terminate();
  }
}

const connect4 = (clientId: string): Buffer => encode(RawClient.connectPacket({ protocolVersion: 4, clientId }), 4);

// ---- tests ----

describe('transports', () => {
  let pki: Pki;

  beforeAll(() => {
    pki = makePki();
  });

  afterAll(() => {
    pki?.remove();
  });

  describe('TCP, TLS, WS and WSS, two listeners of each, in one broker', () => {
    let b: TestBroker;
    const names = ['tcp.a', 'tcp.b', 'tls.a', 'tls.b', 'ws.a', 'ws.b', 'wss.a', 'wss.b'];
    const clients: MqttClient[] = [];
    const wsRaws: WsRaw[] = [];

    beforeAll(async () => {
      const tlsKeys = { cert: pki.serverCert, key: pki.serverKey };
      b = await startBroker({
        listeners: {
          'tcp.a': {},
          'tcp.b': {},
          'tls.a': tlsKeys,
          'tls.b': tlsKeys,
          'ws.a': {},
          'ws.b': {},
          'wss.a': tlsKeys,
          'wss.b': tlsKeys,
        },
      });
    });

    afterAll(async () => {
      for (const c of clients) await endClient(c, true);
      for (const w of wsRaws) w.close();
      await b?.stop();
    });

    async function client(listener: string, clientId = uniqueId(listener.replace('.', '-'))): Promise<MqttClient> {
      const c = await connectClient(b.url(listener), { clientId, protocolVersion: 5, ca: pki.ca, rejectUnauthorized: true });
      clients.push(c);
      return c;
    }

    it('every listener is bound to its own port', () => {
      const ports = names.map((n) => b.port(n));
      expect(new Set(ports).size).toBe(names.length);
      for (const p of ports) expect(p).toBeGreaterThan(0);
    });

    for (const name of ['tcp.a', 'tls.a', 'ws.a', 'wss.a']) {
      it(`mqtt.js publishes and receives over ${name.split('.')[0]}`, async () => {
        const pub = await client(name);
        const sub = await client(name);
        await roundTrip(pub, sub, `tr/${name}`);
      });
    }

    it('a client is attributed to the listener it connected through', async () => {
      for (const name of names) {
        const id = uniqueId(`on-${name.replace('.', '-')}`);
        await client(name, id);
        expect(b.broker.control.client(id)?.listener).toBe(name);
      }
    });

    it('a message published on one listener reaches subscribers on every listener', async () => {
      const subs = await Promise.all(names.map((n) => client(n)));
      const recs = subs.map((s) => recorder(s));
      await Promise.all(subs.map((s) => s.subscribeAsync('fanout/all', { qos: 1 })));
      const pub = await client('wss.b');
      await pub.publishAsync('fanout/all', 'everyone', { qos: 1 });
      for (const r of recs) {
        const m = await r.next();
        expect(m.topic).toBe('fanout/all');
        expect(m.payload.toString()).toBe('everyone');
      }
    });

    it('a TLS client that does not trust the server certificate cannot connect', async () => {
      await expect(connectClient(b.url('tls.a'), { clientId: uniqueId('untrusting'), rejectUnauthorized: true })).rejects.toThrow();
    });

    it('WebSocket: any path is accepted', async () => {
      const url = `ws://127.0.0.1:${b.port('ws.a')}/some/other/path?x=1`;
      const c = await connectClient(url, { clientId: uniqueId('any-path'), protocolVersion: 4 });
      clients.push(c);
      expect(c.connected).toBe(true);
    });

    it('[MQTT-6.0.0-4] WebSocket: the server selects "mqtt" when the client offers it among others', async () => {
      const w = await WsRaw.open(`ws://127.0.0.1:${b.port('ws.a')}/mqtt`, ['foo', 'mqtt']);
      wsRaws.push(w);
      expect(w.ws.protocol).toBe('mqtt');
      w.send(connect4(uniqueId('ws-raw')));
      const p = await w.next();
      expect(p).toMatchObject({ type: 2, reasonCode: 0, sessionPresent: false });
    });

    it('WebSocket: the old "mqttv3.1" subprotocol is accepted', async () => {
      const w = await WsRaw.open(`ws://127.0.0.1:${b.port('ws.b')}/mqtt`, ['mqttv3.1']);
      wsRaws.push(w);
      expect(w.ws.protocol).toBe('mqttv3.1');
      w.send(connect4(uniqueId('ws-v31')));
      expect(await w.next()).toMatchObject({ type: 2, reasonCode: 0 });
    });

    it('WebSocket: an upgrade offering only another subprotocol is refused', async () => {
      await expect(WsRaw.open(`ws://127.0.0.1:${b.port('ws.a')}/mqtt`, ['chat'])).rejects.toMatchObject({ statusCode: 400 });
    });

    it('WebSocket: an upgrade offering no subprotocol is refused', async () => {
      await expect(WsRaw.open(`ws://127.0.0.1:${b.port('ws.a')}/mqtt`, undefined)).rejects.toMatchObject({ statusCode: 400 });
    });

    it('WebSocket over TLS: an upgrade offering only another subprotocol is refused', async () => {
      await expect(WsRaw.open(`wss://127.0.0.1:${b.port('wss.a')}/mqtt`, ['chat'], { ca: pki.ca })).rejects.toMatchObject({ statusCode: 400 });
    });

    it('[MQTT-6.0.0-2] WebSocket: packets need not align with frames (one split in two, two in one)', async () => {
      const w = await WsRaw.open(`ws://127.0.0.1:${b.port('ws.a')}/mqtt`, ['mqtt']);
      wsRaws.push(w);
      const connect = connect4(uniqueId('ws-frames'));
      w.send(connect.subarray(0, 5));
      w.send(connect.subarray(5));
      expect(await w.next()).toMatchObject({ type: 2, reasonCode: 0 });
      w.send(Buffer.from([0xc0, 0x00, 0xc0, 0x00]));
      expect(await w.next()).toMatchObject({ type: 13 });
      expect(await w.next()).toMatchObject({ type: 13 });
    });

    it('[MQTT-6.0.0-1] WebSocket: a text frame closes the connection', async () => {
      const w = await WsRaw.open(`ws://127.0.0.1:${b.port('ws.a')}/mqtt`, ['mqtt']);
      wsRaws.push(w);
      w.send(connect4(uniqueId('ws-text')));
      expect(await w.next()).toMatchObject({ type: 2, reasonCode: 0 });
      w.ws.send('\u00c0\u0000', { binary: false });
      await Promise.race([w.closedP, new Promise((_, reject) => setTimeout(() => reject(new Error('still open')), 3000))]);
      expect(w.closed).toBe(true);
    });
  });

  describe('mutual TLS', () => {
    let b: TestBroker;
    const seen = new Map<string, ConnectInfo>();
    const clients: MqttClient[] = [];
    const capture = definePlugin({
      name: 'capture-auth',
      apiVersion: '^1.0.0',
      create(ctx) {
        return {
          init() {
            ctx.hooks.on('client.authenticate', (e) => {
              seen.set(e.connectInfo.clientId, e.connectInfo);
              return undefined;
            });
          },
        };
      },
    });

    beforeAll(async () => {
      const mtls = { cert: pki.serverCert, key: pki.serverKey, cross_certificate: true, client_ca_certs: pki.caPath };
      b = await startBroker({
        listeners: {
          'tls.mtls': mtls,
          'tls.cn': { ...mtls, cert_cn_as_username: true },
          'wss.mtls': mtls,
        },
        plugins: [capture],
      });
    });

    afterAll(async () => {
      for (const c of clients) await endClient(c, true);
      await b?.stop();
    });

    async function client(listener: string, clientId: string, extra: Record<string, unknown>): Promise<MqttClient> {
      const c = await connectClient(b.url(listener), { clientId, protocolVersion: 5, ca: pki.ca, rejectUnauthorized: true, ...extra });
      clients.push(c);
      return c;
    }

    it('a client without a certificate is refused', async () => {
      const id = uniqueId('no-cert');
      await expect(client('tls.mtls', id, {})).rejects.toThrow();
      expect(b.broker.control.client(id)).toBeUndefined();
      expect(seen.has(id)).toBe(false);
    });

    it('a client whose certificate is signed by another CA is refused', async () => {
      const id = uniqueId('stranger');
      await expect(client('tls.mtls', id, { cert: pki.stranger.cert, key: pki.stranger.key })).rejects.toThrow();
      expect(b.broker.control.client(id)).toBeUndefined();
    });

    it('a client with a certificate signed by the configured client CA connects', async () => {
      const id = uniqueId('device');
      const c = await client('tls.mtls', id, { cert: pki.client.cert, key: pki.client.key });
      expect(c.connected).toBe(true);
      expect(b.broker.control.client(id)?.connected).toBe(true);
      // without cert_cn_as_username the CONNECT username stays
      expect(b.broker.control.client(id)?.username).toBeUndefined();
      expect(seen.get(id)?.certCommonName).toBe('device-42');
    });

    it('WSS with client certificates: refused without one, accepted with one', async () => {
      await expect(client('wss.mtls', uniqueId('wss-no-cert'), {})).rejects.toThrow();
      const id = uniqueId('wss-device');
      const c = await client('wss.mtls', id, { cert: pki.client.cert, key: pki.client.key });
      expect(c.connected).toBe(true);
    });

    it('cert_cn_as_username: the certificate CN is the username, over the one in CONNECT', async () => {
      const id = uniqueId('cn');
      await client('tls.cn', id, { cert: pki.client.cert, key: pki.client.key, username: 'claimed-name', password: 'pw' });
      expect(seen.get(id)?.username).toBe('device-42');
      expect(b.broker.control.client(id)?.username).toBe('device-42');
    });

    it('cert_cn_as_username: a client sending no username gets the CN as username', async () => {
      const id = uniqueId('cn-anon');
      await client('tls.cn', id, { cert: pki.client.cert, key: pki.client.key });
      expect(seen.get(id)?.username).toBe('device-42');
      expect(b.broker.control.client(id)?.username).toBe('device-42');
    });
  });

  describe('PROXY protocol', () => {
    let b: TestBroker;
    const opened = new RawClientPool();

    beforeAll(async () => {
      b = await startBroker({ listeners: { 'tcp.proxied': { proxy_protocol: true, proxy_protocol_timeout: '1s' } } });
    });

    afterAll(async () => {
      opened.destroyAll();
      await b?.stop();
    });

    async function viaProxy(header: Buffer, clientId: string): Promise<RawClient> {
      const c = opened.track(await RawClient.open(b.port(), { version: 4 }));
      c.send(Buffer.concat([header, connect4(clientId)]));
      const connack = await c.expect(2);
      expect(connack.reasonCode).toBe(0);
      return c;
    }

    function v2(family: 'inet' | 'inet6', src: number[], dst: number[], srcPort: number, dstPort: number, command = 0x21): Buffer {
      const sig = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
      const body = [...src, ...dst, srcPort >> 8, srcPort & 0xff, dstPort >> 8, dstPort & 0xff];
      return Buffer.from([...sig, command, family === 'inet' ? 0x11 : 0x21, body.length >> 8, body.length & 0xff, ...body]);
    }

    it('v1 TCP4: the address in the header is the client address', async () => {
      const id = uniqueId('pp1');
      await viaProxy(Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.1 51234 1883\r\n'), id);
      const info = b.broker.control.client(id);
      expect(info?.ipAddress).toBe('203.0.113.7');
      expect(info?.port).toBe(51234);
    });

    it('v1 TCP6: the address in the header is the client address', async () => {
      const id = uniqueId('pp1-6');
      await viaProxy(Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::2 40000 1883\r\n'), id);
      const info = b.broker.control.client(id);
      expect(info?.ipAddress).toBe('2001:db8::1');
      expect(info?.port).toBe(40000);
    });

    it('v2 IPv4: the address in the header is the client address', async () => {
      const id = uniqueId('pp2');
      await viaProxy(v2('inet', [198, 51, 100, 23], [10, 0, 0, 1], 40001, 1883), id);
      const info = b.broker.control.client(id);
      expect(info?.ipAddress).toBe('198.51.100.23');
      expect(info?.port).toBe(40001);
    });

    it('v2 IPv6: the address is shown as a v1 header or a socket would show it (2001:db8::1)', async () => {
      const id = uniqueId('pp2-6');
      const src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01];
      const dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02];
      await viaProxy(v2('inet6', src, dst, 40002, 1883), id);
      const info = b.broker.control.client(id);
      expect(info?.ipAddress).toBe('2001:db8::1');
      expect(info?.port).toBe(40002);
    });

    it('v2 header and CONNECT arriving in separate writes', async () => {
      const id = uniqueId('pp2-split');
      const c = opened.track(await RawClient.open(b.port(), { version: 4 }));
      const header = v2('inet', [192, 0, 2, 9], [10, 0, 0, 1], 40003, 1883);
      c.send(header.subarray(0, 10));
      await new Promise((r) => setTimeout(r, 50));
      c.send(header.subarray(10));
      await new Promise((r) => setTimeout(r, 50));
      c.send(connect4(id));
      expect((await c.expect(2)).reasonCode).toBe(0);
      expect(b.broker.control.client(id)?.ipAddress).toBe('192.0.2.9');
    });

    it('a connection without the header is closed without CONNACK', async () => {
      const id = uniqueId('no-header');
      const c = opened.track(await RawClient.open(b.port(), { version: 4 }));
      c.send(connect4(id));
      expect(await c.expectClose(3000)).toEqual([]);
      expect(b.broker.control.client(id)).toBeUndefined();
    });

    it('a connection that sends nothing is closed after proxy_protocol_timeout', async () => {
      const start = Date.now();
      const closed = await new Promise<number>((resolve, reject) => {
        const s = netConnect({ port: b.port(), host: '127.0.0.1' });
        s.on('error', () => undefined);
        s.on('close', () => resolve(Date.now() - start));
        setTimeout(() => {
          s.destroy();
          reject(new Error('still open after 4 s'));
        }, 4000);
      });
      expect(closed).toBeGreaterThanOrEqual(900);
    });
  });
});
