import { describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import type { AuthResult, HookDecision, Logger, Message, PublishAclResult } from '@rmqtt-ts/plugin-api';
import { HookRegistry } from './registry.js';

function silentLogger(): Logger {
  return pino({ level: 'silent' }) as unknown as Logger;
}

/** A registry whose error log is observable. */
function setup(): { hooks: HookRegistry; errors: ReturnType<typeof vi.fn> } {
  const logger = silentLogger();
  const errors = vi.fn();
  (logger as unknown as { error: unknown }).error = errors;
  return { hooks: new HookRegistry(logger), errors };
}

function isThenable(v: unknown): boolean {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function';
}

const message = (topic = 't'): Message => ({
  id: 1,
  topic,
  payload: Buffer.from('p'),
  qos: 0,
  retain: false,
  properties: {},
  from: { type: 'custom', node: 1, clientId: 'c', username: undefined, ip: '127.0.0.1' },
  createdAt: Date.now(),
  expiresAt: 0,
});

// Events are opaque to the registry; a minimal shape is enough for these tests.
const nonsubscribed = { message: message() };
const authEvent = { connectInfo: {} } as never;
const aclEvent = { client: undefined, message: message() };
const publishEvent = { client: undefined };

const deny: AuthResult = { result: 'deny', reasonCode: 0x87 };
const allow = (extra: Partial<AuthResult> = {}): HookDecision<AuthResult> => ({ result: { result: 'allow', ...extra }, proceed: true });

describe('HookRegistry: observe', () => {
  it('runs every enabled handler with the event', () => {
    const { hooks } = setup();
    const seen: string[] = [];
    hooks.add('a', 'message.nonsubscribed', (e) => void seen.push(`a:${e.message.topic}`), undefined, true);
    hooks.add('b', 'message.nonsubscribed', (e) => void seen.push(`b:${e.message.topic}`), undefined, true);
    hooks.add('c', 'message.nonsubscribed', (e) => void seen.push(`c:${e.message.topic}`), undefined, true);
    const r = hooks.observe('message.nonsubscribed', nonsubscribed);
    expect(r).toBeUndefined();
    expect(seen).toEqual(['a:t', 'b:t', 'c:t']);
  });

  it('logs a throwing handler against its plugin and runs the rest', () => {
    const { hooks, errors } = setup();
    const seen: string[] = [];
    const boom = new Error('boom');
    hooks.add('a', 'message.nonsubscribed', () => void seen.push('a'), undefined, true);
    hooks.add('bad', 'message.nonsubscribed', () => {
      throw boom;
    }, undefined, true);
    hooks.add('c', 'message.nonsubscribed', () => void seen.push('c'), undefined, true);
    expect(() => hooks.observe('message.nonsubscribed', nonsubscribed)).not.toThrow();
    expect(seen).toEqual(['a', 'c']);
    expect(errors).toHaveBeenCalledTimes(1);
    expect(errors.mock.calls[0]![0]).toMatchObject({ err: boom, plugin: 'bad', hook: 'message.nonsubscribed' });
  });

  it('logs a rejecting async handler and still runs the later ones', async () => {
    const { hooks, errors } = setup();
    const seen: string[] = [];
    const boom = new Error('async boom');
    hooks.add('a', 'client.connect', () => void seen.push('a'), undefined, true);
    hooks.add('bad', 'client.connect', async () => {
      await new Promise((r) => setTimeout(r, 5));
      throw boom;
    }, undefined, true);
    hooks.add('c', 'client.connect', async () => {
      await Promise.resolve();
      seen.push('c');
    }, undefined, true);
    hooks.add('d', 'client.connect', () => void seen.push('d'), undefined, true);
    const r = hooks.observe('client.connect', { connectInfo: {} as never });
    expect(isThenable(r)).toBe(true);
    await expect(r).resolves.toBeUndefined();
    expect(seen).toEqual(['a', 'c', 'd']);
    expect(errors).toHaveBeenCalledTimes(1);
    expect(errors.mock.calls[0]![0]).toMatchObject({ err: boom, plugin: 'bad', hook: 'client.connect' });
  });

  it('runs handlers after an async one in order, each once', async () => {
    const { hooks } = setup();
    const seen: string[] = [];
    hooks.add('a', 'client.connect', () => void seen.push('a'), undefined, true);
    hooks.add('b', 'client.connect', async () => {
      await new Promise((r) => setTimeout(r, 10));
      seen.push('b');
    }, undefined, true);
    hooks.add('c', 'client.connect', () => void seen.push('c'), undefined, true);
    await hooks.observe('client.connect', { connectInfo: {} as never });
    expect(seen).toEqual(['a', 'b', 'c']);
  });

  it('returns a non-promise when every handler is synchronous', () => {
    const { hooks } = setup();
    hooks.add('a', 'client.connect', () => undefined, undefined, true);
    hooks.add('b', 'client.connect', () => undefined, undefined, true);
    expect(isThenable(hooks.observe('client.connect', { connectInfo: {} as never }))).toBe(false);
  });
});

describe('HookRegistry: decide', () => {
  it('returns the initial value synchronously when nobody listens', () => {
    const { hooks } = setup();
    const r = hooks.decide('client.authenticate', authEvent, deny);
    expect(r).toBe(deny);
  });

  it('folds a result through the handlers', () => {
    const { hooks } = setup();
    const accs: unknown[] = [];
    hooks.add('a', 'client.authenticate', (_e, acc) => {
      accs.push(acc);
      return allow({ superuser: false });
    }, undefined, true);
    hooks.add('b', 'client.authenticate', (_e, acc) => {
      accs.push(acc);
      return { result: { ...acc!, superuser: true }, proceed: true };
    }, undefined, true);
    const r = hooks.decide('client.authenticate', authEvent, undefined);
    expect(accs).toEqual([undefined, { result: 'allow', superuser: false }]);
    expect(r).toEqual({ result: 'allow', superuser: true });
  });

  it('ends the chain on proceed: false', () => {
    const { hooks } = setup();
    const later = vi.fn(() => allow());
    hooks.add('a', 'client.authenticate', () => ({ result: deny, proceed: false }), undefined, true);
    hooks.add('b', 'client.authenticate', later, undefined, true);
    expect(hooks.decide('client.authenticate', authEvent, undefined)).toBe(deny);
    expect(later).not.toHaveBeenCalled();
  });

  it('passes the accumulated result along when a handler returns undefined', () => {
    const { hooks } = setup();
    const accs: unknown[] = [];
    hooks.add('a', 'client.authenticate', () => allow(), undefined, true);
    hooks.add('b', 'client.authenticate', (_e, acc) => {
      accs.push(acc);
      return undefined;
    }, undefined, true);
    hooks.add('c', 'client.authenticate', (_e, acc) => {
      accs.push(acc);
      return undefined;
    }, undefined, true);
    expect(hooks.decide('client.authenticate', authEvent, deny)).toEqual({ result: 'allow' });
    expect(accs).toEqual([{ result: 'allow' }, { result: 'allow' }]);
  });

  it('keeps the initial value when every handler passes', () => {
    const { hooks } = setup();
    hooks.add('a', 'client.authenticate', () => undefined, undefined, true);
    hooks.add('b', 'client.authenticate', () => undefined, undefined, true);
    expect(hooks.decide('client.authenticate', authEvent, deny)).toBe(deny);
  });

  it('fails closed with the onError value when a handler throws, and stops there', () => {
    const { hooks, errors } = setup();
    const later = vi.fn(() => allow());
    hooks.add('a', 'client.authenticate', () => allow(), undefined, true);
    hooks.add('bad', 'client.authenticate', () => {
      throw new Error('auth backend down');
    }, undefined, true);
    hooks.add('c', 'client.authenticate', later, undefined, true);
    const onError: AuthResult = { result: 'deny', reasonCode: 0x80 };
    expect(hooks.decide('client.authenticate', authEvent, undefined, onError)).toBe(onError);
    expect(later).not.toHaveBeenCalled();
    expect(errors).toHaveBeenCalledTimes(1);
    expect(errors.mock.calls[0]![0]).toMatchObject({ plugin: 'bad', hook: 'client.authenticate' });
  });

  it('fails closed with the onError value when an async handler rejects', async () => {
    const { hooks, errors } = setup();
    const later = vi.fn(() => allow());
    hooks.add('bad', 'client.authenticate', async () => {
      await Promise.resolve();
      throw new Error('timeout');
    }, undefined, true);
    hooks.add('c', 'client.authenticate', later, undefined, true);
    const onError: AuthResult = { result: 'deny', reasonCode: 0x80 };
    await expect(hooks.decide('client.authenticate', authEvent, undefined, onError)).resolves.toBe(onError);
    expect(later).not.toHaveBeenCalled();
    expect(errors).toHaveBeenCalledTimes(1);
  });

  it('folds through an async handler placed between synchronous ones', async () => {
    const { hooks } = setup();
    const accs: unknown[] = [];
    const last = vi.fn(() => allow());
    hooks.add('a', 'message.publishCheckAcl', (_e, acc) => {
      accs.push(acc);
      return { result: { allow: true, reasonCode: 1 }, proceed: true };
    }, { priority: 30 }, true);
    hooks.add('b', 'message.publishCheckAcl', async (_e, acc) => {
      accs.push(acc);
      await new Promise((r) => setTimeout(r, 5));
      return { result: { allow: true, reasonCode: 2 }, proceed: true };
    }, { priority: 20 }, true);
    hooks.add('c', 'message.publishCheckAcl', (_e, acc) => {
      accs.push(acc);
      return undefined;
    }, { priority: 10 }, true);
    hooks.add('d', 'message.publishCheckAcl', (_e, acc) => {
      accs.push(acc);
      return { result: { allow: false, reasonCode: 0x87 }, proceed: false };
    }, { priority: 5 }, true);
    hooks.add('e', 'message.publishCheckAcl', last as never, { priority: 0 }, true);
    const r = hooks.decide('message.publishCheckAcl', aclEvent, undefined);
    expect(isThenable(r)).toBe(true);
    await expect(r).resolves.toEqual({ allow: false, reasonCode: 0x87 });
    expect(accs).toEqual([undefined, { allow: true, reasonCode: 1 }, { allow: true, reasonCode: 2 }, { allow: true, reasonCode: 2 }]);
    expect(last).not.toHaveBeenCalled();
  });

  it('answers synchronously when every handler does (a cached ACL answer costs no promise)', () => {
    const { hooks } = setup();
    const cached = new Map<string, PublishAclResult>([['t', { allow: true }]]);
    hooks.add('acl', 'message.publishCheckAcl', (e) => {
      const hit = cached.get(e.message.topic);
      return hit === undefined ? undefined : { result: hit, proceed: false };
    }, undefined, true);
    hooks.add('other', 'message.publishCheckAcl', () => undefined, { priority: -1 }, true);
    const r = hooks.decide('message.publishCheckAcl', aclEvent, { allow: false });
    expect(isThenable(r)).toBe(false);
    expect(r).toEqual({ allow: true });
  });
});

describe('HookRegistry: transform', () => {
  it('passes a replacement to the next handler and returns the last one', () => {
    const { hooks } = setup();
    const seen: string[] = [];
    hooks.add('a', 'message.publish', (m) => ({ ...m, topic: `${m.topic}/a` }), undefined, true);
    hooks.add('b', 'message.publish', (m) => {
      seen.push(m.topic);
      return { ...m, topic: `${m.topic}/b` };
    }, undefined, true);
    const r = hooks.transform('message.publish', message('x'), publishEvent);
    expect(isThenable(r)).toBe(false);
    expect(seen).toEqual(['x/a']);
    expect((r as Message).topic).toBe('x/a/b');
  });

  it('drops the value when a handler returns null, and later handlers do not run', () => {
    const { hooks } = setup();
    const later = vi.fn((m: Message) => m);
    hooks.add('a', 'message.publish', () => null, undefined, true);
    hooks.add('b', 'message.publish', later, undefined, true);
    expect(hooks.transform('message.publish', message(), publishEvent)).toBeNull();
    expect(later).not.toHaveBeenCalled();
  });

  it('treats undefined as unchanged', () => {
    const { hooks } = setup();
    const m = message('same');
    let got: Message | undefined;
    hooks.add('a', 'message.publish', () => undefined as never, undefined, true);
    hooks.add('b', 'message.publish', (v) => {
      got = v;
      return undefined as never;
    }, undefined, true);
    expect(hooks.transform('message.publish', m, publishEvent)).toBe(m);
    expect(got).toBe(m);
  });

  it('awaits an async handler and goes on with its replacement', async () => {
    const { hooks } = setup();
    hooks.add('a', 'message.publish', async (m) => {
      await new Promise((r) => setTimeout(r, 5));
      return { ...m, topic: 'async' };
    }, { priority: 1 }, true);
    hooks.add('b', 'message.publish', (m) => ({ ...m, payload: Buffer.from(`${m.topic}!`) }), undefined, true);
    const r = hooks.transform('message.publish', message(), publishEvent);
    expect(isThenable(r)).toBe(true);
    const out = (await r) as Message;
    expect(out.topic).toBe('async');
    expect(out.payload.toString()).toBe('async!');
  });

  it('drops the value when an async handler resolves to null', async () => {
    const { hooks } = setup();
    const later = vi.fn((m: Message) => m);
    hooks.add('a', 'message.publish', async () => null, undefined, true);
    hooks.add('b', 'message.publish', later, undefined, true);
    await expect(hooks.transform('message.publish', message(), publishEvent)).resolves.toBeNull();
    expect(later).not.toHaveBeenCalled();
  });

  it('logs and skips a throwing handler, keeping the value it was given', () => {
    const { hooks, errors } = setup();
    hooks.add('a', 'message.publish', (m) => ({ ...m, topic: 'a' }), { priority: 2 }, true);
    hooks.add('bad', 'message.publish', () => {
      throw new Error('bad transform');
    }, { priority: 1 }, true);
    hooks.add('c', 'message.publish', (m) => ({ ...m, topic: `${m.topic}c` }), undefined, true);
    expect((hooks.transform('message.publish', message(), publishEvent) as Message).topic).toBe('ac');
    expect(errors.mock.calls[0]![0]).toMatchObject({ plugin: 'bad', hook: 'message.publish' });
  });
});

describe('HookRegistry: ordering', () => {
  it('runs higher priority first and equal priorities in registration order', () => {
    const { hooks } = setup();
    const seen: string[] = [];
    const reg = (name: string, priority: number | undefined): void =>
      hooks.add(name, 'message.nonsubscribed', () => void seen.push(name), priority === undefined ? undefined : { priority }, true);
    // scrambled on purpose: ties are separated by registrations of other priorities
    reg('p0-first', 0);
    reg('p10-first', 10);
    reg('pm5-first', -5);
    reg('p10-second', 10);
    reg('p0-second', undefined); // default priority is 0
    reg('p5', 5);
    reg('pm5-second', -5);
    reg('p10-third', 10);
    reg('p100', 100);
    hooks.observe('message.nonsubscribed', nonsubscribed);
    const expected = ['p100', 'p10-first', 'p10-second', 'p10-third', 'p5', 'p0-first', 'p0-second', 'pm5-first', 'pm5-second'];
    expect(seen).toEqual(expected);
    expect(hooks.owners('message.nonsubscribed')).toEqual(expected);
  });

  it('keeps registration order among equal priorities whatever order the owners are enabled in', () => {
    const { hooks } = setup();
    const seen: string[] = [];
    for (const owner of ['x', 'y', 'z']) hooks.registrar(owner).on('message.nonsubscribed', () => void seen.push(owner));
    hooks.setEnabled('z', true);
    hooks.setEnabled('x', true);
    hooks.setEnabled('y', true);
    hooks.observe('message.nonsubscribed', nonsubscribed);
    expect(seen).toEqual(['x', 'y', 'z']);
  });

  it('orders decide handlers by priority too', () => {
    const { hooks } = setup();
    hooks.add('low', 'client.authenticate', () => ({ result: { result: 'deny' }, proceed: false }), { priority: 1 }, true);
    hooks.add('high', 'client.authenticate', () => ({ result: { result: 'allow' }, proceed: false }), { priority: 2 }, true);
    expect(hooks.decide('client.authenticate', authEvent, undefined)).toEqual({ result: 'allow' });
  });
});

describe('HookRegistry: enabling and owners', () => {
  it('has() is false when nothing is registered', () => {
    const { hooks } = setup();
    expect(hooks.has('message.delivered')).toBe(false);
  });

  it('registers a registrar’s handlers disabled until setEnabled(owner, true)', () => {
    const { hooks } = setup();
    const h = vi.fn();
    hooks.registrar('p').on('message.nonsubscribed', h);
    expect(hooks.has('message.nonsubscribed')).toBe(false);
    hooks.observe('message.nonsubscribed', nonsubscribed);
    expect(h).not.toHaveBeenCalled();
    hooks.setEnabled('p', true);
    expect(hooks.has('message.nonsubscribed')).toBe(true);
    hooks.observe('message.nonsubscribed', nonsubscribed);
    expect(h).toHaveBeenCalledTimes(1);
  });

  it('setEnabled(owner, false) takes only that owner’s handlers out of dispatch', () => {
    const { hooks } = setup();
    const a = vi.fn();
    const b = vi.fn();
    hooks.registrar('a').on('message.nonsubscribed', a);
    hooks.registrar('b').on('message.nonsubscribed', b);
    hooks.registrar('a').on('message.acked', a);
    hooks.setEnabled('a', true);
    hooks.setEnabled('b', true);
    hooks.setEnabled('a', false);
    hooks.observe('message.nonsubscribed', nonsubscribed);
    expect(a).not.toHaveBeenCalled();
    expect(b).toHaveBeenCalledTimes(1);
    expect(hooks.has('message.acked')).toBe(false);
    expect(hooks.has('message.nonsubscribed')).toBe(true);
    hooks.setEnabled('b', false);
    expect(hooks.has('message.nonsubscribed')).toBe(false);
  });

  it('enables again after a disable', () => {
    const { hooks } = setup();
    const h = vi.fn();
    hooks.registrar('p').on('message.nonsubscribed', h);
    hooks.setEnabled('p', true);
    hooks.setEnabled('p', false);
    hooks.setEnabled('p', true);
    hooks.observe('message.nonsubscribed', nonsubscribed);
    expect(h).toHaveBeenCalledTimes(1);
  });

  it('removeOwner drops every handler of an owner for good', () => {
    const { hooks } = setup();
    const gone = vi.fn();
    const kept = vi.fn();
    hooks.registrar('gone').on('message.nonsubscribed', gone);
    hooks.registrar('gone').on('client.connect', gone);
    hooks.registrar('kept').on('message.nonsubscribed', kept);
    hooks.setEnabled('gone', true);
    hooks.setEnabled('kept', true);
    hooks.removeOwner('gone');
    hooks.setEnabled('gone', true);
    hooks.observe('message.nonsubscribed', nonsubscribed);
    expect(gone).not.toHaveBeenCalled();
    expect(kept).toHaveBeenCalledTimes(1);
    expect(hooks.has('client.connect')).toBe(false);
    expect(hooks.owners('message.nonsubscribed')).toEqual(['kept']);
  });

  it('refuses an unknown hook name', () => {
    const { hooks } = setup();
    expect(() => hooks.registrar('p').on('no.such.hook' as never, (() => undefined) as never)).toThrow(/no\.such\.hook/);
  });
});
