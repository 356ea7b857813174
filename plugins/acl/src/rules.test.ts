/** The rule language on its own: parsing, errors, and the decisions for connect, publish and subscribe. */
import { describe, expect, it } from 'vitest';
import type { ClientInfo, ConnectInfo } from '@rmqtt-ts/plugin-api';
import { AclRules, filtersOverlap, parseRules } from './rules.js';

function info(over: Partial<ConnectInfo> & { ip?: string } = {}): ConnectInfo {
  const { ip, ...rest } = over;
  return {
    node: 1,
    listener: 'tcp.external',
    remoteAddr: { ip: ip ?? '10.1.2.3', port: 5000 },
    localAddr: { ip: '127.0.0.1', port: 1883 },
    clientId: 'c1',
    clientIdAssigned: false,
    username: 'alice',
    password: undefined,
    protoVer: 4,
    protoName: 'MQTT',
    keepalive: 60,
    cleanStart: true,
    sessionExpiryInterval: 0,
    will: undefined,
    userProperties: [],
    certCommonName: undefined,
    ...rest,
  };
}

function client(over: Partial<ConnectInfo> & { ip?: string } = {}): ClientInfo {
  const ci = info(over);
  return { clientId: ci.clientId, username: ci.username, connectInfo: ci, superuser: false, connected: true, connectedAt: 0, attributes: new Map() };
}

const acl = (rules: unknown[]): AclRules => new AclRules(parseRules(rules));

/** RMQTT's shipped rules. */
const SHIPPED = [
  ['allow', { user: 'dashboard' }, 'subscribe', ['$SYS/#']],
  ['allow', { ipaddr: '127.0.0.1' }, 'pubsub', ['$SYS/#', '#']],
  ['deny', 'all', 'subscribe', ['$SYS/#', { eq: '#' }]],
  ['allow', 'all'],
];

describe('parsing', () => {
  it("accepts RMQTT's shipped rules", () => {
    expect(parseRules(SHIPPED)).toHaveLength(4);
  });

  it.each([
    [['maybe', 'all'], /rule 1: permission: expected "allow" or "deny"/],
    [['allow'], /rule 1: expected \[permission, who, action\?, topics\?\]/],
    [['allow', 'everyone'], /rule 1: who: expected "all" or a table/],
    [['allow', { name: 'x' }], /rule 1: who: unknown field "name"/],
    [['allow', { ipaddr: '300.1.1.1' }], /rule 1: ipaddr: "300.1.1.1" is not an address or CIDR block/],
    [['allow', { ipaddr: '10.0.0.0/40' }], /rule 1: ipaddr: "10.0.0.0\/40" has a bad prefix length/],
    [['allow', { protocol: 6 }], /rule 1: who.protocol: expected 3, 4 or 5/],
    [['deny', { user: 'x', password: 'p' }], /rule 1: who.password: only allow rules/],
    [['deny', { superuser: true }], /rule 1: who.superuser: only allow rules/],
    [['allow', 'all', 'read'], /rule 1: action: expected connect, publish, subscribe, pubsub or all/],
    [['allow', 'all', 'publish', 'a/#'], /rule 1: topics: expected a list/],
    [['allow', 'all', 'publish', ['a/#/b']], /rule 1: topics: "a\/#\/b" is not a topic filter/],
    [['allow', 'all', 'publish', [{ ne: 'x' }]], /rule 1: topics: expected a topic filter or \{ eq = "…" \}/],
  ])('rejects %j', (rule, message) => {
    expect(() => parseRules([rule])).toThrow(message);
  });

  it('names the position of the bad rule', () => {
    expect(() => parseRules([['allow', 'all'], ['allow', 'all'], ['nope', 'all']])).toThrow(/^rule 3:/);
  });
});

describe('connect', () => {
  it('first connect/all rule whose who matches decides; no hit is a denial', () => {
    const a = acl([
      ['deny', { clientid: 'bad' }, 'connect'],
      ['allow', { user: 'root', password: 'pw', superuser: true }, 'connect'],
      ['allow', { ipaddr: ['10.0.0.0/8', '::1'] }, 'connect'],
    ]);
    expect(a.connect(info({ clientId: 'bad' }))?.permission).toBe('deny');
    expect(a.connect(info({ username: 'root', password: Buffer.from('pw'), ip: '192.168.1.1' }))).toMatchObject({ permission: 'allow', superuser: true });
    expect(a.connect(info({ username: 'root', password: Buffer.from('nope'), ip: '10.9.9.9' }))).toMatchObject({ permission: 'allow', superuser: false });
    expect(a.connect(info({ ip: '::1' }))?.permission).toBe('allow');
    expect(a.connect(info({ ip: '192.168.1.1' }))).toBeUndefined();
  });

  it('pubsub rules do not apply to connect', () => {
    expect(acl([['allow', 'all', 'pubsub']]).connect(info())).toBeUndefined();
  });

  it('protocol matches the protocol level', () => {
    const a = acl([['allow', { protocol: 5 }, 'connect']]);
    expect(a.connect(info({ protoVer: 5 }))?.permission).toBe('allow');
    expect(a.connect(info({ protoVer: 4 }))).toBeUndefined();
  });
});

describe('publish', () => {
  it('topic filters and eq; first hit wins; no hit is a denial', () => {
    const a = acl([
      ['deny', 'all', 'publish', ['secret/#']],
      ['allow', 'all', 'publish', ['a/+', { eq: 'exact' }]],
    ]);
    const c = client();
    expect(a.publish(c, 'secret/x')).toBe('deny');
    expect(a.publish(c, 'a/b')).toBe('allow');
    expect(a.publish(c, 'a/b/c')).toBe('deny');
    expect(a.publish(c, 'exact')).toBe('allow');
    expect(a.publish(c, 'other')).toBe('deny');
  });

  it('a verdict remembered per client stays right: repeated topics, many topics, other clients', () => {
    const a = acl([
      ['deny', 'all', 'publish', ['secret/#']],
      ['allow', { user: 'alice' }, 'publish', ['a/#']],
    ]);
    const alice = client();
    const bob = client({ username: 'bob', clientId: 'c2' });
    for (let round = 0; round < 2; round++) {
      expect(a.publish(alice, 'a/1')).toBe('allow');
      expect(a.publish(alice, 'secret/1')).toBe('deny');
      expect(a.publish(bob, 'a/1')).toBe('deny');
    }
    // more topics than one client's cache holds: it starts over, the answers do not change
    for (let i = 0; i < 600; i++) expect(a.publish(alice, i % 2 === 0 ? `a/${i}` : `secret/${i}`)).toBe(i % 2 === 0 ? 'allow' : 'deny');
    expect(a.publish(alice, 'a/1')).toBe('allow');
    // new rules are a new AclRules: nothing of the old verdicts survives
    const b = acl([['allow', 'all', 'publish', ['secret/#']]]);
    expect(b.publish(alice, 'secret/1')).toBe('allow');
    expect(b.publish(alice, 'a/1')).toBe('deny');
  });

  it('%u and %c stand for one plain level', () => {
    const a = acl([['allow', 'all', 'publish', ['users/%u/#', 'clients/%c']]]);
    expect(a.publish(client({ username: 'bob' }), 'users/bob/x')).toBe('allow');
    expect(a.publish(client({ username: 'bob' }), 'users/eve/x')).toBe('deny');
    expect(a.publish(client({ clientId: 'dev1' }), 'clients/dev1')).toBe('allow');
    // names that would widen an allow: nothing is allowed through them
    expect(a.publish(client({ username: '+' }), 'users/eve/x')).toBe('deny');
    expect(a.publish(client({ username: '#' }), 'users/eve/x')).toBe('deny');
    expect(a.publish(client({ username: 'eve/x' }), 'users/eve/x/y')).toBe('deny');
    expect(a.publish(client({ username: undefined }), 'users/undefined/x')).toBe('deny');
    expect(a.publish(client({ clientId: '+' }), 'clients/dev1')).toBe('deny');
    expect(a.publish(client({ clientId: 'a/b' }), 'clients/a/b')).toBe('deny');
  });

  it('a placeholder value is never substituted again (%c holding %u)', () => {
    const a = acl([['allow', 'all', 'publish', ['x/%c/%u']]]);
    expect(a.publish(client({ clientId: '%u', username: 'bob' }), 'x/%u/bob')).toBe('allow');
    expect(a.publish(client({ clientId: '%u', username: 'bob' }), 'x/bob/bob')).toBe('deny');
  });

  it('deny rules with placeholders still hit for unsafe names', () => {
    const a = acl([
      ['deny', 'all', 'publish', ['private/%c/#']],
      ['allow', 'all'],
    ]);
    expect(a.publish(client({ clientId: 'ok' }), 'private/ok/x')).toBe('deny');
    expect(a.publish(client({ clientId: 'ok' }), 'private/other/x')).toBe('allow');
    expect(a.publish(client({ clientId: '#' }), 'anything')).toBe('deny');
  });

  it('wildcards at the top do not match $ topics', () => {
    const a = acl([['allow', 'all', 'publish', ['#']]]);
    expect(a.publish(client(), '$SYS/x')).toBe('deny');
  });
});

describe('subscribe', () => {
  it("RMQTT's shipped rules: localhost may subscribe to # and $SYS/#, others to neither", () => {
    const a = acl(SHIPPED);
    const local = client({ ip: '127.0.0.1' });
    const remote = client({ ip: '127.0.0.2' });
    expect(a.subscribe(local, '#').permission).toBe('allow');
    expect(a.subscribe(local, '$SYS/brokers/1/stats').permission).toBe('allow');
    expect(a.subscribe(remote, '#').permission).toBe('deny');
    expect(a.subscribe(remote, '$SYS/#').permission).toBe('deny');
    expect(a.subscribe(remote, '$SYS/brokers/+/stats').permission).toBe('deny');
    expect(a.subscribe(remote, 'a/#')).toEqual({ permission: 'allow' });
    expect(a.subscribe(client({ ip: '10.0.0.1', username: 'dashboard' }), '$SYS/#').permission).toBe('allow');
  });

  it('a filter is hit when a rule covers it', () => {
    const a = acl([['allow', 'all', 'subscribe', ['a/#']]]);
    expect(a.subscribe(client(), 'a/b/+').permission).toBe('allow');
    expect(a.subscribe(client(), 'a/#').permission).toBe('allow');
    expect(a.subscribe(client(), '#').permission).toBe('deny');
    expect(a.subscribe(client(), '+/b').permission).toBe('deny');
  });

  it('a deny that covers part of the filter grants it and keeps the denied topics from it', () => {
    const a = acl([
      ['deny', 'all', 'subscribe', ['secret/#']],
      ['allow', 'all'],
    ]);
    const d = a.subscribe(client(), '#');
    expect(d.permission).toBe('allow');
    expect(d.deliverIf).toBeTypeOf('function');
    expect(d.deliverIf!('secret/x')).toBe(false);
    // "secret/#" covers "secret" itself too [MQTT-4.7.1-2]
    expect(d.deliverIf!('secret')).toBe(false);
    expect(d.deliverIf!('secretive/x')).toBe(true);
    expect(d.deliverIf!('public/x')).toBe(true);
    // a filter the deny does not touch gets no check
    expect(a.subscribe(client(), 'public/#')).toEqual({ permission: 'allow' });
    expect(a.subscribe(client(), 'secret/x').permission).toBe('deny');
    expect(a.subscribe(client(), '+/x').deliverIf!('secret/x')).toBe(false);
  });
});

describe('filtersOverlap', () => {
  it.each([
    ['a/#', '#', true],
    ['secret/#', '+/x', true],
    ['a/b', 'a/+', true],
    ['a/b', 'a/c', false],
    ['a/b', 'a/b/c', false],
    ['a/+', 'a/b/c', false],
    ['$SYS/#', '#', false],
    ['$SYS/#', '+/x', false],
    ['$SYS/a', '$SYS/+', true],
  ])('%s and %s: %s', (x, y, expected) => {
    expect(filtersOverlap(x, y)).toBe(expected);
    expect(filtersOverlap(y, x)).toBe(expected);
  });
});
