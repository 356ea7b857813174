/**
 * The ACL at the wire (raw MQTT packets, clients bound to 127.0.0.1 and 127.0.0.2): RMQTT's shipped
 * rules, and the ways around a deny that must fail — $share/$exclusive/$limit/$delayed forms, `#` beside
 * a deny (granted, denied topics never delivered, retained ones included), topic aliases, wills, and
 * names holding wildcards fed to %c/%u. [MQTT-3.9.3] SUBACK 0x80 / 0x87, [MQTT-3.4.2] PUBACK 0x87.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import retainer from '@rmqtt-ts/plugin-retainer';
import { RawClient, ping, publishDone, uniqueId, useTestScope, type RawConnectOptions, type TestBroker } from '@rmqtt-ts/testkit';
import acl from '../src/index.js';

const SHIPPED_ACL = fileURLToPath(new URL('../../../configs/plugins/rmqtt-acl.toml', import.meta.url));
const RMQTT_ACL = '/work/shared/reference/rmqtt-configs/plugins/rmqtt-acl.toml';

/** $exclusive/, $limit/n/, $delayed/n/ and topic aliases on, so that every way around a rule is open to try. */
const LISTENER = { limit_subscription: true, delayed_publish: true, max_topic_aliases: 10 };

const scope = useTestScope();
// raw clients go before the brokers stop: vitest runs after-hooks last-registered first
const raws: RawClient[] = [];
afterEach(() => {
  for (const r of raws.splice(0)) r.destroy();
});

function broker(toml: string): Promise<TestBroker> {
  return scope.broker({ plugins: [acl, retainer], files: { 'rmqtt-acl.toml': toml }, listeners: { 'tcp.external': LISTENER } });
}

/** CONNECT from a chosen local address (127.0.0.2 is "not this machine" to the rules). */
async function connect(b: TestBroker, from: '127.0.0.1' | '127.0.0.2', options: RawConnectOptions = {}): Promise<{ c: RawClient; reasonCode: number }> {
  const version = options.protocolVersion ?? 4;
  const c = await RawClient.open(b.port(), { version, localAddress: from });
  raws.push(c);
  c.send(RawClient.connectPacket({ clientId: uniqueId('acl'), ...options }));
  const connack = await c.expect(2);
  return { c, reasonCode: connack.reasonCode };
}

async function connected(b: TestBroker, from: '127.0.0.1' | '127.0.0.2', options: RawConnectOptions = {}): Promise<RawClient> {
  const { c, reasonCode } = await connect(b, from, options);
  expect(reasonCode).toBe(0);
  return c;
}

async function subackOf(c: RawClient, filter: string, qos: 0 | 1 = 0): Promise<number> {
  const ack = await c.subscribe({ filter, qos });
  return ack.reasonCodes[0]!;
}

/** Every PUBLISH the client gets within `ms` (answering none). */
async function received(c: RawClient, ms = 300): Promise<string[]> {
  const topics: string[] = [];
  const until = Date.now() + ms;
  for (;;) {
    const left = until - Date.now();
    if (left <= 0) return topics;
    let p;
    try {
      p = await c.next(left);
    } catch {
      return topics; // nothing more within the time
    }
    if (p === null) return topics;
    if (p.type === 3) topics.push(p.topic);
  }
}

describe("the shipped rules (RMQTT's)", () => {
  it('a client on 127.0.0.1 may subscribe to # and $SYS/#', async () => {
    const b = await broker(readFileSync(SHIPPED_ACL, 'utf8'));
    const c = await connected(b, '127.0.0.1', { protocolVersion: 5 });
    expect(await subackOf(c, '#')).toBe(0);
    expect(await subackOf(c, '$SYS/#')).toBe(0);
  });

  it('another address may not subscribe to $SYS/# or exactly #, in any form; other filters are granted', async () => {
    const b = await broker(readFileSync(SHIPPED_ACL, 'utf8'));
    const v5 = await connected(b, '127.0.0.2', { protocolVersion: 5 });
    for (const f of ['#', '$SYS/#', '$SYS/brokers/+/stats', '$share/g/$SYS/#', '$share/g/#', '$exclusive/$SYS/x', '$limit/3/#']) {
      expect(await subackOf(v5, f), f).toBe(0x87);
    }
    expect(await subackOf(v5, 'a/#')).toBe(0);
    const v4 = await connected(b, '127.0.0.2', { protocolVersion: 4 });
    expect(await subackOf(v4, '#')).toBe(0x80);
    expect(b.broker.control.plugin('acl')?.attrs).toMatchObject({ rules: 4, subscribe_denied: 8 });
  });

  it("RMQTT's own rmqtt-acl.toml loads unchanged and decides the same", async () => {
    const b = await broker(readFileSync(RMQTT_ACL, 'utf8'));
    const c = await connected(b, '127.0.0.2', { protocolVersion: 5 });
    expect(await subackOf(c, '#')).toBe(0x87);
    expect(await subackOf(c, 'x/y')).toBe(0);
  });
});

const SECRET_RULES = `
disconnect_if_pub_rejected = false
rules = [
  ["allow", { user = "admin" }, "publish", ["secret/#"]],
  ["deny", "all", "subscribe", ["secret/#"]],
  ["deny", "all", "publish", ["secret/#"]],
  ["allow", "all"],
]
`;

describe('a deny on secret/# cannot be side-stepped', () => {
  it('$share, $exclusive and $limit subscriptions to it are refused', async () => {
    const b = await broker(SECRET_RULES);
    const c = await connected(b, '127.0.0.2', { protocolVersion: 5 });
    for (const f of ['secret/#', 'secret/x', '$share/g/secret/#', '$exclusive/secret/x', '$limit/2/secret/#']) {
      expect(await subackOf(c, f), f).toBe(0x87);
    }
  });

  it('# is granted, but secret topics never reach it — live or retained', async () => {
    const b = await broker(SECRET_RULES);
    const admin = await connected(b, '127.0.0.2', { protocolVersion: 5, username: 'admin' });
    await publishDone(admin, 'secret/retained', 'r1', { qos: 1, retain: true });
    await publishDone(admin, 'public/retained', 'r2', { qos: 1, retain: true });
    const c = await connected(b, '127.0.0.2', { protocolVersion: 5 });
    expect(await subackOf(c, '#', 1)).toBe(1);
    const plusSub = await connected(b, '127.0.0.2', { protocolVersion: 5 });
    expect(await subackOf(plusSub, '+/+', 1)).toBe(1);
    await publishDone(admin, 'secret/x', 's', { qos: 1 });
    await publishDone(admin, 'public/x', 'p', { qos: 1 });
    const got = await received(c);
    expect(got).toContain('public/retained');
    expect(got).toContain('public/x');
    expect(got.filter((t) => t.startsWith('secret'))).toEqual([]);
    const gotPlus = await received(plusSub);
    expect(gotPlus).toContain('public/x');
    expect(gotPlus.filter((t) => t.startsWith('secret'))).toEqual([]);
  });

  it('a denied PUBLISH gets 0x87, reaches no one and is not counted as published', async () => {
    const b = await broker(SECRET_RULES);
    const admin = await connected(b, '127.0.0.2', { protocolVersion: 5, username: 'admin' });
    await admin.subscribe({ filter: '$share/g/+/+', qos: 1 });
    const c = await connected(b, '127.0.0.2', { protocolVersion: 5 });
    const before = b.broker.metrics.get('messages.publish');
    expect((await publishDone(c, 'secret/x', 'no', { qos: 1 }))!.reasonCode).toBe(0x87);
    expect((await publishDone(c, '$delayed/1/secret/x', 'no', { qos: 1 }))!.reasonCode).toBe(0x87);
    expect((await publishDone(c, 'secret/x', 'no', { qos: 2 }))!.reasonCode).toBe(0x87);
    expect(b.broker.metrics.get('messages.publish')).toBe(before);
    expect(await received(admin, 1300)).toEqual([]);
  });

  it('a PUBLISH by topic alias is checked on the topic the alias stands for', async () => {
    const b = await broker(SECRET_RULES);
    const watcher = await connected(b, '127.0.0.2', { protocolVersion: 5, username: 'admin' });
    await watcher.subscribe({ filter: '$share/g/secret/#', qos: 0 });
    const c = await connected(b, '127.0.0.2', { protocolVersion: 5 });
    // alias 1 set on a denied topic, then used alone
    expect((await publishDone(c, 'secret/a', 'x', { qos: 1, properties: { topicAlias: 1 } }))!.reasonCode).toBe(0x87);
    const second = await publishDone(c, '', 'y', { qos: 1, properties: { topicAlias: 1 } });
    expect(second!.reasonCode).toBe(0x87);
    expect(await received(watcher)).toEqual([]);
  });

  it('a will on a denied topic is not published', async () => {
    const b = await broker(SECRET_RULES);
    const admin = await connected(b, '127.0.0.2', { protocolVersion: 5, username: 'admin' });
    await admin.subscribe({ filter: '$share/g/secret/#', qos: 0 });
    const c = await connected(b, '127.0.0.2', { protocolVersion: 5, will: { topic: 'secret/will', payload: Buffer.from('w'), qos: 0, retain: false, properties: {} } });
    c.destroy();
    expect(await received(admin, 500)).toEqual([]);
  });

  it('with disconnect_if_pub_rejected, a denied PUBLISH closes the connection', async () => {
    const b = await broker(SECRET_RULES.replace('disconnect_if_pub_rejected = false', 'disconnect_if_pub_rejected = true'));
    const c = await connected(b, '127.0.0.2', { protocolVersion: 4 });
    c.send({ type: 3, topic: 'secret/x', payload: Buffer.from('x'), qos: 1, retain: false, dup: false, packetId: 1, properties: {} });
    const before = await c.expectClose();
    expect(before.filter((p) => p.type === 4)).toEqual([]);
  });
});

describe('placeholders cannot be widened by the names they stand for', () => {
  const RULES = `
disconnect_if_pub_rejected = false
rules = [
  ["allow", "all", "connect"],
  ["allow", "all", "publish", ["devices/%c/#", "users/%u/#"]],
  ["allow", "all", "subscribe", ["devices/%c/#", "users/%u/#"]],
]
`;
  it.each(['+', '#', 'a/b', 'x%c', '%u'])('client id %j only reaches its own literal level', async (id) => {
    const b = await broker(RULES);
    const c = await connected(b, '127.0.0.2', { protocolVersion: 5, clientId: id, username: 'u1' });
    expect((await publishDone(c, 'devices/other/x', 'x', { qos: 1 }))!.reasonCode).toBe(0x87);
    expect(await subackOf(c, 'devices/+/x')).toBe(0x87);
    expect(await subackOf(c, 'devices/#')).toBe(0x87);
    const literal = !id.includes('/') && !id.includes('+') && !id.includes('#');
    // allowed: 0x10 (no matching subscribers), a success code
    expect((await publishDone(c, `devices/${literal ? id : 'z'}/x`, 'x', { qos: 1 }))!.reasonCode).toBe(literal ? 0x10 : 0x87);
  });

  it.each(['+', '#', 'a/b'])('username %j only reaches its own literal level', async (user) => {
    const b = await broker(RULES);
    const c = await connected(b, '127.0.0.2', { protocolVersion: 5, clientId: uniqueId('u'), username: user });
    expect((await publishDone(c, 'users/alice/x', 'x', { qos: 1 }))!.reasonCode).toBe(0x87);
    expect(await subackOf(c, 'users/+/x')).toBe(0x87);
  });

  it('a client without a username matches no %u rule', async () => {
    const b = await broker(RULES);
    const c = await connected(b, '127.0.0.2', { protocolVersion: 5 });
    expect((await publishDone(c, 'users/undefined/x', 'x', { qos: 1 }))!.reasonCode).toBe(0x87);
  });
});

describe('connect rules', () => {
  const RULES = `
rules = [
  ["deny", { clientid = "banned" }, "connect"],
  ["allow", { user = "root", password = "pw", superuser = true }, "connect"],
  ["allow", { ipaddr = "127.0.0.1" }, "connect"],
  ["deny", "all", "subscribe", ["#"]],
  ["allow", "all", "pubsub"],
]
`;
  it('deny and no hit refuse the CONNECT (v5 0x87, 3.1.1 0x05); allow lets in', async () => {
    const b = await broker(RULES);
    expect((await connect(b, '127.0.0.1', { protocolVersion: 5, clientId: 'banned' })).reasonCode).toBe(0x87);
    expect((await connect(b, '127.0.0.2', { protocolVersion: 5 })).reasonCode).toBe(0x87);
    expect((await connect(b, '127.0.0.2', { protocolVersion: 4 })).reasonCode).toBe(0x05);
    expect((await connect(b, '127.0.0.1', { protocolVersion: 5 })).reasonCode).toBe(0);
  });

  it('a superuser rule lets its clients skip the ACL', async () => {
    const b = await broker(RULES);
    const root = await connected(b, '127.0.0.2', { protocolVersion: 5, username: 'root', password: Buffer.from('pw') });
    expect(await subackOf(root, '#')).toBe(0);
    const local = await connected(b, '127.0.0.1', { protocolVersion: 5 });
    expect(await subackOf(local, '#')).toBe(0x87);
    expect((await connect(b, '127.0.0.2', { protocolVersion: 5, username: 'root', password: Buffer.from('bad') })).reasonCode).toBe(0x87);
  });
});

describe('at run time', () => {
  it('a reload replaces the rules; a bad file is refused and the running rules stay', async () => {
    const dir = scope.dir('rmqtt-acl-');
    const b = await scope.broker({ plugins: [acl], pluginsDir: dir, files: { 'rmqtt-acl.toml': 'rules = [["deny", "all", "subscribe", ["a/#"]], ["allow", "all"]]\n' }, listeners: { 'tcp.external': LISTENER } });
    const c = await connected(b, '127.0.0.2', { protocolVersion: 5 });
    expect(await subackOf(c, 'a/1')).toBe(0x87);
    writeFileSync(join(dir, 'rmqtt-acl.toml'), 'rules = [["deny", "all", "subscribe", ["b/#"]], ["allow", "all"]]\n');
    await b.broker.control.reloadPlugin('acl');
    expect(await subackOf(c, 'a/1')).toBe(0);
    expect(await subackOf(c, 'b/1')).toBe(0x87);
    // a publish verdict the old rules gave this client is not reused under the new ones
    writeFileSync(join(dir, 'rmqtt-acl.toml'), 'disconnect_if_pub_rejected = false\nrules = [["allow", "all"]]\n');
    await b.broker.control.reloadPlugin('acl');
    expect((await publishDone(c, 'p/1', 'x', { qos: 1 }))!.reasonCode).toBe(0x10);
    writeFileSync(join(dir, 'rmqtt-acl.toml'), 'disconnect_if_pub_rejected = false\nrules = [["deny", "all", "publish", ["p/#"]], ["deny", "all", "subscribe", ["b/#"]], ["allow", "all"]]\n');
    await b.broker.control.reloadPlugin('acl');
    expect((await publishDone(c, 'p/1', 'x', { qos: 1 }))!.reasonCode).toBe(0x87);
    writeFileSync(join(dir, 'rmqtt-acl.toml'), 'rules = [["deny", "nobody", "subscribe"]]\n');
    await expect(b.broker.control.reloadPlugin('acl')).rejects.toThrow(/rmqtt-acl\.toml: rules: rule 1: who: expected "all" or a table/);
    expect(await subackOf(c, 'b/1')).toBe(0x87);
  });

  it('stopped, nothing is checked; started again, the rules apply — the client stays connected', async () => {
    const b = await broker('rules = [["deny", "all", "subscribe", ["x/#"]], ["allow", "all"]]\n');
    const c = await connected(b, '127.0.0.2', { protocolVersion: 5 });
    expect(await subackOf(c, 'x/1')).toBe(0x87);
    expect(await b.broker.control.stopPlugin('acl')).toBe(true);
    expect(await subackOf(c, 'x/1')).toBe(0);
    await b.broker.control.startPlugin('acl');
    expect(await subackOf(c, 'x/2')).toBe(0x87);
    await ping(c);
  });

  it('a bad rule stops start-up naming the file, the key and the rule', async () => {
    await expect(broker('rules = [["allow", "all"], ["allow", { ipaddr = "10.0.0.0/99" }]]\n')).rejects.toThrow(/rmqtt-acl\.toml: rules: rule 2: ipaddr: "10\.0\.0\.0\/99" has a bad prefix length/);
  });
});
