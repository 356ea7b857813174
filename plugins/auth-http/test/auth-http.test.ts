/**
 * auth-http against real HTTP servers started here (node:http): servers that allow, deny, ignore, answer
 * JSON, are slow, time out, answer 500 or refuse connections; MQTT clients on raw packets.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import aclPlugin from '@rmqtt-ts/plugin-acl';
import { RawClient, publishDone, uniqueId, useTestScope, type RawConnectOptions, type TestBroker } from '@rmqtt-ts/testkit';
import authHttp, { fill, readAnswer } from '../src/index.js';

const RMQTT_AUTH_HTTP = '/work/shared/reference/rmqtt-configs/plugins/rmqtt-auth-http.toml';

interface Seen {
  method: string;
  path: string;
  query: Record<string, string>;
  body: Record<string, string>;
  headers: IncomingMessage['headers'];
}

type Handler = (seen: Seen, res: ServerResponse) => void;

/** An HTTP server whose answer is chosen per request by `handler`; it records every request. */
class TestServer {
  readonly seen: Seen[] = [];
  handler: Handler = (_s, res) => res.end('allow');
  readonly #server: Server;
  constructor() {
    this.#server = createServer((req, res) => {
      let raw = '';
      req.on('data', (d: Buffer) => (raw += d.toString()));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://x');
        let body: Record<string, string> = {};
        if (raw !== '') body = /json/.test(String(req.headers['content-type'])) ? (JSON.parse(raw) as Record<string, string>) : Object.fromEntries(new URLSearchParams(raw));
        const s: Seen = { method: req.method ?? '', path: url.pathname, query: Object.fromEntries(url.searchParams), body, headers: req.headers };
        this.seen.push(s);
        this.handler(s, res);
      });
    });
  }
  async start(): Promise<this> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    return this;
  }
  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }
  params(): Record<string, string> {
    const last = this.seen.at(-1)!;
    return last.method === 'GET' ? last.query : last.body;
  }
  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

let server: TestServer;

beforeAll(async () => {
  server = await new TestServer().start();
});
// vitest runs after-hooks last-registered first: raw clients destroyed, brokers stopped (the scope), then the server reset
afterEach(() => {
  server.seen.length = 0;
  server.handler = (_s, res) => res.end('allow');
});
afterAll(async () => {
  await server.close();
});
const scope = useTestScope();
const raws: RawClient[] = [];
afterEach(() => {
  for (const r of raws.splice(0)) r.destroy();
});

const AUTH = (url: string, method = 'post', contentType = 'application/x-www-form-urlencoded'): string => `
http_auth_req.url = "${url}/mqtt/auth"
http_auth_req.method = "${method}"
http_auth_req.headers = { content-type = "${contentType}" }
http_auth_req.params = { clientid = "%c", username = "%u", password = "%P", protocol = "%r", ip = "%a", port = "%p", pct = "100%%" }
`;
const ACL = (url: string): string => `
http_acl_req.url = "${url}/mqtt/acl"
http_acl_req.method = "post"
http_acl_req.params = { access = "%A", username = "%u", clientid = "%c", ipaddr = "%a", topic = "%t", protocol = "%r" }
`;
const FAST_RETRY = 'http_timeout = "300ms"\nhttp_retry = { times = 2, interval = "20ms", backoff = 2.0 }\n';

async function broker(authToml: string, options: { acl?: string; listener?: Record<string, unknown> } = {}): Promise<TestBroker> {
  const files: Record<string, string> = { 'rmqtt-auth-http.toml': authToml };
  if (options.acl !== undefined) files['rmqtt-acl.toml'] = options.acl;
  const plugins = options.acl !== undefined ? [authHttp, aclPlugin] : [authHttp];
  return scope.broker({ plugins, files, listeners: { 'tcp.external': { allow_anonymous: false, ...options.listener } } });
}

async function connect(b: TestBroker, options: RawConnectOptions = {}): Promise<{ c: RawClient; code: number }> {
  const version = options.protocolVersion ?? 5;
  const c = await RawClient.open(b.port(), { version });
  raws.push(c);
  c.send(RawClient.connectPacket({ clientId: uniqueId('ah'), protocolVersion: version, ...options }));
  const connack = await c.expect(2, 5000);
  return { c, code: connack.reasonCode };
}

describe('authentication', () => {
  it('POST form: every placeholder filled, configured headers sent; "allow" lets the client in', async () => {
    const b = await broker(`http_headers.x-from = "rmqtt-ts"\n${AUTH(server.url)}`);
    const { code } = await connect(b, { clientId: 'dev-1', username: 'alice', password: Buffer.from('s3cret') });
    expect(code).toBe(0);
    const s = server.seen.at(-1)!;
    expect(s).toMatchObject({ method: 'POST', path: '/mqtt/auth' });
    expect(s.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(s.headers['x-from']).toBe('rmqtt-ts');
    expect(s.body).toEqual({ clientid: 'dev-1', username: 'alice', password: 's3cret', protocol: '5', ip: '127.0.0.1', port: expect.stringMatching(/^\d+$/), pct: '100%' });
  });

  it('GET sends the params as a query string; POST JSON as a JSON body', async () => {
    const b1 = await broker(AUTH(server.url, 'get'));
    expect((await connect(b1, { username: 'q' })).code).toBe(0);
    expect(server.seen.at(-1)).toMatchObject({ method: 'GET', query: { username: 'q', protocol: '5' } });
    const b2 = await broker(AUTH(server.url, 'post', 'application/json'));
    expect((await connect(b2, { username: 'j', protocolVersion: 4 })).code).toBe(0);
    expect(server.seen.at(-1)).toMatchObject({ method: 'POST', body: { username: 'j', protocol: '4' } });
    expect(server.seen.at(-1)!.headers['content-type']).toBe('application/json');
  });

  it('a client without a username is asked about too', async () => {
    const b = await broker(AUTH(server.url));
    server.handler = (s, res) => res.end(s.body['username'] === '' ? 'deny' : 'allow');
    expect((await connect(b)).code).toBe(0x86);
    expect(server.seen).toHaveLength(1);
  });

  it('"deny" refuses: v5 0x86, 3.1.1 0x04', async () => {
    const b = await broker(AUTH(server.url));
    server.handler = (_s, res) => res.end('deny');
    expect((await connect(b, { username: 'x' })).code).toBe(0x86);
    expect((await connect(b, { username: 'x', protocolVersion: 4 })).code).toBe(0x04);
  });

  it('"ignore" passes on: to the file ACL, then to allow_anonymous', async () => {
    server.handler = (_s, res) => res.end('ignore');
    const withAcl = await broker(AUTH(server.url), { acl: 'rules = [["deny", { user = "blocked" }, "connect"], ["allow", "all"]]\n' });
    expect((await connect(withAcl, { username: 'blocked' })).code).toBe(0x87);
    expect((await connect(withAcl, { username: 'fine' })).code).toBe(0);
    const anonymousOff = await broker(AUTH(server.url));
    expect((await connect(anonymousOff, { username: 'x' })).code).toBe(0x87);
    const anonymousOn = await broker(AUTH(server.url), { listener: { allow_anonymous: true } });
    expect((await connect(anonymousOn, { username: 'x' })).code).toBe(0);
  });

  it('it decides before the file ACL: allowed here, a file deny is not asked', async () => {
    const b = await broker(AUTH(server.url), { acl: 'rules = [["deny", "all", "connect"]]\n' });
    expect((await connect(b, { username: 'x' })).code).toBe(0);
  });

  it('JSON {result, superuser} and X-Superuser make superusers, who skip every ACL', async () => {
    const b = await broker(`${AUTH(server.url)}${ACL(server.url)}`, { acl: 'rules = [["deny", "all", "subscribe"], ["allow", "all"]]\n' });
    server.handler = (s, res) => {
      if (s.path === '/mqtt/acl') return void res.end('deny');
      if (s.body['username'] === 'json') return void res.setHeader('content-type', 'application/json').end(JSON.stringify({ result: 'allow', superuser: true }));
      if (s.body['username'] === 'header') return void res.setHeader('x-superuser', 'true').end('allow');
      res.end('allow');
    };
    for (const username of ['json', 'header']) {
      const { c } = await connect(b, { username });
      expect((await c.subscribe({ filter: 'any/#', qos: 0 })).reasonCodes).toEqual([0]);
    }
    const { c: plain } = await connect(b, { username: 'plain' });
    expect((await plain.subscribe({ filter: 'any/#', qos: 0 })).reasonCodes).toEqual([0x87]);
  });

  it('an expire_at already past refuses', async () => {
    const b = await broker(AUTH(server.url));
    server.handler = (_s, res) => res.setHeader('content-type', 'application/json').end(JSON.stringify({ result: 'allow', expire_at: Math.floor(Date.now() / 1000) - 10 }));
    expect((await connect(b, { username: 'x' })).code).toBe(0x86);
  });

  it('disconnect_if_expiry: once expire_at passes, the next PINGREQ ends the client', async () => {
    const b = await broker(`disconnect_if_expiry = true\n${AUTH(server.url)}`);
    const expireAt = Math.floor(Date.now() / 1000) + 2;
    server.handler = (_s, res) => res.setHeader('content-type', 'application/json').end(JSON.stringify({ result: 'allow', expire_at: expireAt }));
    const { c, code } = await connect(b, { username: 'x' });
    expect(code).toBe(0);
    await new Promise((r) => setTimeout(r, expireAt * 1000 - Date.now() + 100));
    c.send({ type: 12 });
    await c.expectClose(3000);
  });
});

describe('failing servers', () => {
  it('a server that times out is retried with backoff, then deny_if_error denies', async () => {
    const b = await broker(`${FAST_RETRY}${AUTH(server.url)}`);
    server.handler = () => undefined; // never answers
    const t0 = Date.now();
    expect((await connect(b, { username: 'slow' })).code).toBe(0x86);
    expect(server.seen).toHaveLength(3);
    // three timeouts of 300 ms and waits of 20 + 40 ms
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(b.broker.control.plugin('auth-http')?.attrs).toMatchObject({ errors: 1, auth_deny: 1 });
  });

  it('500 is retried; with deny_if_error = false the client passes on', async () => {
    const b = await broker(`deny_if_error = false\n${FAST_RETRY}${AUTH(server.url)}`, { listener: { allow_anonymous: true } });
    server.handler = (_s, res) => void res.writeHead(500).end('oops');
    expect((await connect(b, { username: 'x' })).code).toBe(0);
    expect(server.seen).toHaveLength(3);
  });

  it('a 4xx answer is "ignore" at once, without retries', async () => {
    const b = await broker(`${FAST_RETRY}${AUTH(server.url)}`, { listener: { allow_anonymous: true } });
    server.handler = (_s, res) => void res.writeHead(404).end();
    expect((await connect(b, { username: 'x' })).code).toBe(0);
    expect(server.seen).toHaveLength(1);
  });

  it('a refused connection denies (deny_if_error) or passes on, and the broker goes on serving', async () => {
    const dead = await new TestServer().start();
    const url = dead.url;
    await dead.close();
    const denying = await broker(`${FAST_RETRY}${AUTH(url)}`);
    expect((await connect(denying, { username: 'x' })).code).toBe(0x86);
    expect((await connect(denying, { username: 'y' })).code).toBe(0x86);
    const passing = await broker(`deny_if_error = false\n${FAST_RETRY}${AUTH(url)}`, { listener: { allow_anonymous: true } });
    const { c, code } = await connect(passing, { username: 'z' });
    expect(code).toBe(0);
    // allowed, nobody subscribed: 0x10
    expect((await publishDone(c, 'still/serving', 'p', { qos: 1 }))!.reasonCode).toBe(0x10);
  });

  it('a slow server holds up only its own client', async () => {
    const b = await broker(`http_timeout = "2s"\n${AUTH(server.url)}`);
    server.handler = (s, res) => {
      if (s.body['username'] === 'slow') setTimeout(() => res.end('allow'), 800);
      else res.end('allow');
    };
    const slow = connect(b, { username: 'slow' });
    const t0 = Date.now();
    expect((await connect(b, { username: 'fast' })).code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(600);
    expect((await slow).code).toBe(0);
  });
});

describe('ACL requests', () => {
  const topicHandler: Handler = (s, res) => {
    if (s.path === '/mqtt/auth') return void res.end('allow');
    const t = s.body['topic'] ?? '';
    res.end(t.startsWith('ok/') ? 'allow' : t.startsWith('no/') ? 'deny' : 'ignore');
  };

  it('subscribe (%A = 1) and publish (%A = 2) ask with the topic; deny is 0x87', async () => {
    const b = await broker(`disconnect_if_pub_rejected = false\n${AUTH(server.url)}${ACL(server.url)}`, { acl: 'rules = [["allow", "all"]]\n' });
    server.handler = topicHandler;
    const { c } = await connect(b, { username: 'u', clientId: 'acl-c' });
    expect((await c.subscribe({ filter: 'ok/sub/#', qos: 1 })).reasonCodes).toEqual([1]);
    expect(server.params()).toEqual({ access: '1', username: 'u', clientid: 'acl-c', ipaddr: '127.0.0.1', topic: 'ok/sub/#', protocol: '5' });
    expect((await c.subscribe({ filter: 'no/#', qos: 1 })).reasonCodes).toEqual([0x87]);
    expect((await publishDone(c, 'no/x', 'p', { qos: 1 }))!.reasonCode).toBe(0x87);
    expect(server.params()).toMatchObject({ access: '2', topic: 'no/x' });
    expect((await publishDone(c, 'ok/x', 'p', { qos: 1 }))!.reasonCode).toBe(0x10);
  });

  it('"ignore" leaves the decision to the file ACL', async () => {
    const b = await broker(`disconnect_if_pub_rejected = false\n${AUTH(server.url)}${ACL(server.url)}`, { acl: 'rules = [["deny", "all", "pubsub", ["other/deny/#"]], ["allow", "all"]]\n' });
    server.handler = topicHandler;
    const { c } = await connect(b, { username: 'u' });
    expect((await c.subscribe({ filter: 'other/deny/x', qos: 0 })).reasonCodes).toEqual([0x87]);
    expect((await c.subscribe({ filter: 'other/fine', qos: 0 })).reasonCodes).toEqual([0]);
  });

  it('X-Cache keeps a publish answer for that many ms (subscribe answers are never cached)', async () => {
    const b = await broker(`disconnect_if_pub_rejected = false\n${AUTH(server.url)}${ACL(server.url)}`);
    server.handler = (s, res) => {
      if (s.path === '/mqtt/auth') return void res.end('allow');
      res.setHeader('x-cache', '60000').end('allow');
    };
    const { c } = await connect(b, { username: 'u' });
    const asked = (): number => server.seen.filter((s) => s.path === '/mqtt/acl').length;
    for (let i = 0; i < 3; i++) await publishDone(c, 'cached/t', 'p', { qos: 1 });
    expect(asked()).toBe(1);
    await publishDone(c, 'cached/other', 'p', { qos: 1 });
    expect(asked()).toBe(2);
    await c.subscribe({ filter: 'cached/t', qos: 0 });
    await c.subscribe({ filter: 'cached/t', qos: 0 });
    expect(asked()).toBe(4);
    expect(b.broker.control.plugin('auth-http')?.attrs).toMatchObject({ acl_cached: 2 });
  });

  it('a preset acl from the authentication answer decides without a request', async () => {
    const b = await broker(`disconnect_if_pub_rejected = false\n${AUTH(server.url)}${ACL(server.url)}`);
    server.handler = (s, res) => {
      if (s.path === '/mqtt/acl') return void res.end('allow');
      res.setHeader('content-type', 'application/json').end(
        JSON.stringify({ result: 'allow', acl: [{ permission: 'deny', action: 'publish', topic: 'own/${clientid}/#' }, { permission: 'allow', action: 'all', topic: 'eq exact/t' }] }),
      );
    };
    const { c } = await connect(b, { username: 'u', clientId: 'p1' });
    const before = server.seen.length;
    expect((await publishDone(c, 'own/p1/x', 'p', { qos: 1 }))!.reasonCode).toBe(0x87);
    expect((await publishDone(c, 'exact/t', 'p', { qos: 1 }))!.reasonCode).toBe(0x10);
    expect(server.seen.length).toBe(before);
    // not in the preset list: asked
    await publishDone(c, 'own/p2/x', 'p', { qos: 1 });
    expect(server.seen.length).toBe(before + 1);
  });

  it('disconnect_if_pub_rejected closes the connection of a denied publisher', async () => {
    const b = await broker(`${AUTH(server.url)}${ACL(server.url)}`);
    server.handler = topicHandler;
    const { c } = await connect(b, { username: 'u', protocolVersion: 4 });
    c.send({ type: 3, topic: 'no/x', payload: Buffer.from('x'), qos: 1, retain: false, dup: false, packetId: 1, properties: {} });
    expect((await c.expectClose()).filter((p) => p.type === 4)).toEqual([]);
  });
});

describe('configuration and lifecycle', () => {
  it("RMQTT's own rmqtt-auth-http.toml loads unchanged", async () => {
    const b = await broker(readFileSync(RMQTT_AUTH_HTTP, 'utf8'));
    expect(b.broker.control.plugin('auth-http')?.attrs).toMatchObject({ auth: 'http://127.0.0.1:9090/mqtt/auth', acl: 'http://127.0.0.1:9090/mqtt/acl' });
  });

  it('a bad request table stops start-up naming the key', async () => {
    await expect(broker('http_auth_req.url = "ftp://x"\n')).rejects.toThrow(/rmqtt-auth-http\.toml: http_auth_req: url: expected http:\/\/ or https:\/\//);
    await expect(broker(`http_auth_req.url = "${server.url}"\nhttp_auth_req.method = "delete"\n`)).rejects.toThrow(/http_auth_req: method: expected get, post or put/);
  });

  it('stopped, no request is made; started again, clients are asked', async () => {
    const b = await broker(AUTH(server.url), { listener: { allow_anonymous: true } });
    server.handler = (_s, res) => res.end('deny');
    expect(await b.broker.control.stopPlugin('auth-http')).toBe(true);
    expect((await connect(b, { username: 'x' })).code).toBe(0);
    expect(server.seen).toHaveLength(0);
    await b.broker.control.startPlugin('auth-http');
    expect((await connect(b, { username: 'x' })).code).toBe(0x86);
  });
});

describe('helpers', () => {
  it('fill replaces known placeholders and keeps %%', () => {
    expect(fill('%u-%c-%x-%%', { u: 'a', c: 'b' })).toBe('a-b-%x-%');
  });
  it('readAnswer: text and JSON bodies, X-Cache, non-2xx', () => {
    expect(readAnswer(200, {}, 'DENY').verdict).toBe('deny');
    expect(readAnswer(200, {}, 'whatever').verdict).toBe('allow');
    expect(readAnswer(204, {}, '').verdict).toBe('allow');
    expect(readAnswer(200, { 'x-cache': '-1' }, 'allow').cacheMs).toBe(-1);
    expect(readAnswer(403, {}, 'allow').verdict).toBe('ignore');
    expect(readAnswer(200, {}, '{"result":"ignore"}').verdict).toBe('ignore');
  });
});
