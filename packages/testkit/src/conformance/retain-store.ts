/**
 * The RetainStore conformance suite: every implementation must pass it. Call it from a test file:
 * `describeRetainStore('ram', async () => ({ store, close }))`.
 */
import { describe, expect, it } from 'vitest';
import { whenOffered } from './optional.js';
import type { Message, RetainStore } from '@rmqtt-ts/plugin-api';

/** `reopen` (durable stores): close the store and open it again over the same data, as a restart does. */
export type RetainStoreFactory = () => Promise<{ store: RetainStore; close?: () => Promise<void> | void; reopen?: () => Promise<RetainStore> }>;

let nextId = 1;

/** A retained message as the kernel would hand it to a store. */
export function retainedMessage(topic: string, payload: string | Buffer, extra: Partial<Message> = {}): Message {
  const now = Date.now();
  return {
    id: nextId++,
    topic,
    payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload),
    qos: 1,
    retain: true,
    properties: {},
    from: { type: 'custom', node: 1, clientId: 'conformance', username: undefined, ip: '127.0.0.1' },
    createdAt: now,
    expiresAt: 0,
    ...extra,
  };
}

const topicsOf = (ms: Message[]): string[] => ms.map((m) => m.topic).sort();

export function describeRetainStore(name: string, factory: RetainStoreFactory): void {
  describe(`RetainStore conformance: ${name}`, () => {
    const withStore = (fn: (store: RetainStore) => Promise<void>) => async () => {
      const { store, close } = await factory();
      try {
        await fn(store);
      } finally {
        await close?.();
      }
    };

    it('stores and gets a message by topic', withStore(async (store) => {
      expect(await store.set(retainedMessage('a/b', 'x'))).toBe(true);
      const got = await store.get('a/b');
      expect(got?.payload.toString()).toBe('x');
      expect(got?.retain).toBe(true);
      expect(await store.count()).toBe(1);
    }));

    it('replaces the message of a topic', withStore(async (store) => {
      await store.set(retainedMessage('a/b', 'one'));
      await store.set(retainedMessage('a/b', 'two'));
      expect((await store.get('a/b'))?.payload.toString()).toBe('two');
      expect(await store.count()).toBe(1);
    }));

    it('deletes a topic and reports whether there was one', withStore(async (store) => {
      await store.set(retainedMessage('a/b', 'x'));
      expect(await store.delete('a/b')).toBe(true);
      expect(await store.delete('a/b')).toBe(false);
      expect(await store.get('a/b')).toBeUndefined();
      expect(await store.count()).toBe(0);
    }));

    it('matches filters with + and # [MQTT-4.7.1-2, -3]', withStore(async (store) => {
      for (const t of ['a', 'a/b', 'a/b/c', 'a/c', 'b/b', '/a', 'a//b']) await store.set(retainedMessage(t, t));
      expect(topicsOf(await store.match('a/#'))).toEqual(['a', 'a//b', 'a/b', 'a/b/c', 'a/c']);
      expect(topicsOf(await store.match('a/+'))).toEqual(['a/b', 'a/c']);
      expect(topicsOf(await store.match('+/b'))).toEqual(['a/b', 'b/b']);
      expect(topicsOf(await store.match('a/b'))).toEqual(['a/b']);
      expect(topicsOf(await store.match('+/+'))).toEqual(['/a', 'a/b', 'a/c', 'b/b']);
      expect(topicsOf(await store.match('a/+/b'))).toEqual(['a//b']);
      expect(topicsOf(await store.match('#'))).toHaveLength(7);
      expect(await store.match('x/#')).toEqual([]);
    }));

    it('does not match $ topics with a leading wildcard [MQTT-4.7.2-1]', withStore(async (store) => {
      await store.set(retainedMessage('$SYS/x', 's'));
      await store.set(retainedMessage('n/x', 'n'));
      expect(topicsOf(await store.match('#'))).toEqual(['n/x']);
      expect(topicsOf(await store.match('+/x'))).toEqual(['n/x']);
      expect(topicsOf(await store.match('$SYS/#'))).toEqual(['$SYS/x']);
      expect(topicsOf(await store.match('$SYS/+'))).toEqual(['$SYS/x']);
    }));

    it('hides expired messages', withStore(async (store) => {
      const now = Date.now();
      await store.set(retainedMessage('e/1', 'gone', { createdAt: now - 2000, expiresAt: now - 1000, properties: { messageExpiryInterval: 1 } }));
      await store.set(retainedMessage('e/2', 'live', { expiresAt: now + 60_000, properties: { messageExpiryInterval: 60 } }));
      expect(topicsOf(await store.match('e/#'))).toEqual(['e/2']);
      expect(await store.get('e/1')).toBeUndefined();
    }));

    it('keeps payload bytes and MQTT 5 properties intact', withStore(async (store) => {
      const payload = Buffer.from([0, 1, 2, 255, 0]);
      await store.set(retainedMessage('p', payload, {
        qos: 2,
        properties: { contentType: 'application/octet-stream', payloadFormatIndicator: 0, userProperties: [['k', 'v'], ['k', 'w']], correlationData: Buffer.from('c') },
      }));
      const got = (await store.get('p'))!;
      expect(Buffer.compare(got.payload, payload)).toBe(0);
      expect(got.qos).toBe(2);
      expect(got.properties.contentType).toBe('application/octet-stream');
      expect(got.properties.userProperties).toEqual([['k', 'v'], ['k', 'w']]);
      expect(got.properties.correlationData?.toString()).toBe('c');
    }));

    it('handles many topics and a deep topic', withStore(async (store) => {
      for (let i = 0; i < 500; i++) await store.set(retainedMessage(`m/${i % 10}/${i}`, String(i)));
      expect(await store.count()).toBe(500);
      expect(await store.match('m/3/#')).toHaveLength(50);
      const deep = Array.from({ length: 5000 }, () => 'd').join('/');
      await store.set(retainedMessage(deep, 'deep'));
      const plus = Array.from({ length: 5000 }, () => '+').join('/');
      expect(topicsOf(await store.match(plus))).toEqual([deep]);
    }));

    it('a reopened store has what was retained: replaced, deleted and expired topics as they were left', () =>
      whenOffered(factory, 'reopen', async (h) => {
        const now = Date.now();
        await h.store.set(retainedMessage('d/keep', 'old'));
        await h.store.set(retainedMessage('d/keep', Buffer.from([0, 255])));
        await h.store.set(retainedMessage('d/gone', 'x'));
        await h.store.delete('d/gone');
        await h.store.set(retainedMessage('d/brief', 'y', { expiresAt: now + 150, properties: { messageExpiryInterval: 1 } }));
        await h.store.set(retainedMessage('d/lasting', 'z', { expiresAt: now + 60_000, properties: { messageExpiryInterval: 60 } }));
        await new Promise((r) => setTimeout(r, 200));
        const store = await h.reopen();
        expect(topicsOf(await store.match('d/#'))).toEqual(['d/keep', 'd/lasting']);
        expect((await store.get('d/keep'))?.payload).toEqual(Buffer.from([0, 255]));
        expect(await store.count()).toBe(2);
      }));
  });
}
