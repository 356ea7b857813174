/**
 * The MessageStore conformance suite: every implementation must pass it. Call it from a test file:
 * `describeMessageStore('ram', async () => ({ store, close }))`; a durable store also gives `reopen`
 * (close and open again over the same data, as a restart does).
 */
import { describe, expect, it } from 'vitest';
import { whenOffered } from './optional.js';
import type { Message, MessageStore } from '@rmqtt-ts/plugin-api';
import { storedMessage } from './session-store.js';

export interface MessageStoreHandle {
  store: MessageStore;
  reopen?: () => Promise<MessageStore>;
  close?: () => Promise<void> | void;
}
export type MessageStoreFactory = () => Promise<MessageStoreHandle>;

const topics = (xs: ReadonlyArray<{ message: Message }>): string[] => xs.map((x) => x.message.topic);

export function describeMessageStore(name: string, factory: MessageStoreFactory): void {
  describe(`MessageStore conformance: ${name}`, () => {
    const withStore = (fn: (h: MessageStoreHandle) => Promise<void>) => async () => {
      const h = await factory();
      try {
        await fn(h);
      } finally {
        await h.close?.();
      }
    };

    it('matches stored messages by filter, oldest first; a wildcard first level skips $ topics [MQTT-4.7.2-1]', withStore(async ({ store }) => {
      for (const t of ['a/1', 'a/2/x', 'b/1', '$SYS/x', 'a/3']) await store.store(storedMessage(t, t), []);
      const now = Date.now();
      expect(topics(await store.match('a/+', now))).toEqual(['a/1', 'a/3']);
      expect(topics(await store.match('a/#', now))).toEqual(['a/1', 'a/2/x', 'a/3']);
      expect(topics(await store.match('#', now))).toEqual(['a/1', 'a/2/x', 'b/1', 'a/3']);
      expect(topics(await store.match('$SYS/#', now))).toEqual(['$SYS/x']);
      expect(await store.count()).toBe(5);
    }));

    it('an expired message is not matched', withStore(async ({ store }) => {
      const now = Date.now();
      await store.store(storedMessage('e/old', 'x', { expiresAt: now - 1 }), []);
      await store.store(storedMessage('e/new', 'y', { expiresAt: now + 60_000 }), []);
      await store.store(storedMessage('e/never', 'z', { expiresAt: 0 }), []);
      expect(topics(await store.match('e/#', now))).toEqual(['e/new', 'e/never']);
      expect(topics(await store.match('e/#', now + 120_000))).toEqual(['e/never']);
    }));

    it('keeps who had each message: recipients at publish, deliveries added, a forgotten session', withStore(async ({ store }) => {
      const m1 = storedMessage('r/1', 'a');
      const m2 = storedMessage('r/2', 'b');
      await store.store(m1, ['c1', '$share/g/r/+']);
      await store.store(m2, []);
      await store.markDelivered('c2', [m1, m2]);
      await store.markDelivered('$share/h/r/#', [m2]);
      const byTopic = async (): Promise<Record<string, string[]>> =>
        Object.fromEntries((await store.match('r/#', Date.now())).map((x) => [x.message.topic, [...x.recipients].sort()]));
      expect(await byTopic()).toEqual({ 'r/1': ['$share/g/r/+', 'c1', 'c2'], 'r/2': ['$share/h/r/#', 'c2'] });
      await store.forget('c2');
      expect(await byTopic()).toEqual({ 'r/1': ['$share/g/r/+', 'c1'], 'r/2': ['$share/h/r/#'] });
    }));

    it('a message comes back whole: payload bytes, properties, origin', withStore(async ({ store }) => {
      const m = storedMessage('w/1', Buffer.from([0, 1, 254, 255]), {
        qos: 2,
        properties: { correlationData: Buffer.from('cd'), userProperties: [['k', 'v']], contentType: 'bin', responseTopic: 'resp', payloadFormatIndicator: 0 },
        expiresAt: Date.now() + 60_000,
      });
      await store.store(m, []);
      const [got] = await store.match('w/1', Date.now());
      expect(got!.message).toEqual(m);
    }));

    it('a reopened store has its messages and their recipients, not the expired ones', () =>
      whenOffered(factory, 'reopen', async (h) => {
        const now = Date.now();
        const keep = storedMessage('p/keep', 'k', { expiresAt: now + 60_000 });
        await h.store.store(keep, ['c1']);
        await h.store.store(storedMessage('p/soon', 's', { expiresAt: now + 150 }), []);
        await h.store.markDelivered('c2', [keep]);
        await new Promise((r) => setTimeout(r, 200));
        const store = await h.reopen();
        const got = await store.match('p/#', Date.now());
        expect(topics(got)).toEqual(['p/keep']);
        expect([...got[0]!.recipients].sort()).toEqual(['c1', 'c2']);
        expect(got[0]!.message).toEqual(keep);
      }));
  });
}
