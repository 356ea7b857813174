/**
 * The SessionStore conformance suite: every implementation must pass it. Call it from a test file:
 * `describeSessionStore('lmdb', async () => ({ store, reopen, close }))`. `reopen` closes the store
 * and opens it again over the same data (a restart); a store that keeps nothing across instances (the
 * kernel's memory store) returns itself.
 */
import { describe, expect, it } from 'vitest';
import { whenOffered } from './optional.js';
import type { ConnectInfo, DeliverySnapshot, InflightSnapshot, Message, SessionChange, SessionSnapshot, SessionStore } from '@rmqtt-ts/plugin-api';

export interface SessionStoreHandle {
  store: SessionStore;
  /** The store as a restarted broker would open it. */
  reopen: () => Promise<SessionStore>;
  close?: () => Promise<void> | void;
  /** Make the backend's writes fail (true) or work again (false); stores that cannot fail leave it out. */
  breakWrites?: (broken: boolean) => void;
}
export type SessionStoreFactory = () => Promise<SessionStoreHandle>;

let nextMessageId = Date.now() * 1000;

export function storedMessage(topic: string, payload: string | Buffer, extra: Partial<Message> = {}): Message {
  return {
    id: nextMessageId++,
    topic,
    payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload),
    qos: 1,
    retain: false,
    properties: {},
    from: { type: 'custom', node: 1, clientId: 'publisher', username: 'u', ip: '127.0.0.1' },
    createdAt: 1_700_000_000_000,
    expiresAt: 0,
    ...extra,
  };
}

export function sessionSnapshot(clientId: string, extra: Partial<SessionSnapshot> = {}): SessionSnapshot {
  const connectInfo: ConnectInfo = {
    node: 1,
    listener: 'tcp.external',
    remoteAddr: { ip: '127.0.0.1', port: 50000 },
    localAddr: { ip: '127.0.0.1', port: 1883 },
    clientId,
    clientIdAssigned: false,
    username: 'user',
    password: Buffer.from([0, 1, 2, 255]),
    protoVer: 5,
    protoName: 'MQTT',
    keepalive: 60,
    cleanStart: false,
    sessionExpiryInterval: 3600,
    will: { topic: 'will/t', payload: Buffer.from('bye'), qos: 1, retain: false, delayInterval: 5, properties: { contentType: 'text/plain' } },
    userProperties: [['k', 'v']],
    certCommonName: undefined,
  };
  return {
    clientId,
    node: 1,
    connectInfo,
    createdAt: 1_700_000_000_000,
    disconnectedAt: undefined,
    expiryInterval: 3600,
    subscriptions: [],
    inflight: [],
    queued: [],
    awaitingRel: [],
    ...extra,
  };
}

const delivery = (message: Message, extra: Partial<DeliverySnapshot> = {}): DeliverySnapshot => ({ message, qos: 1, retain: false, subscriptionIds: [], ...extra });
const inflight = (message: Message, packetId: number, extra: Partial<InflightSnapshot> = {}): InflightSnapshot => ({
  ...delivery(message),
  packetId,
  state: 'publish',
  ...extra,
});

/** What a loaded snapshot says, in a form that compares equal whatever order the store lists things. */
function normal(s: SessionSnapshot | undefined): unknown {
  if (s === undefined) return undefined;
  return {
    ...s,
    subscriptions: [...s.subscriptions].sort((a, b) => a.rawFilter.localeCompare(b.rawFilter)),
    inflight: [...s.inflight].sort((a, b) => a.packetId - b.packetId),
    awaitingRel: [...s.awaitingRel].sort((a, b) => a - b),
  };
}

export function describeSessionStore(name: string, factory: SessionStoreFactory): void {
  describe(`SessionStore conformance: ${name}`, () => {
    /** Apply batches, then load what a restart would see. */
    const run = (fn: (apply: (...changes: SessionChange[]) => Promise<void>, reload: () => Promise<Map<string, SessionSnapshot>>) => Promise<void>) => async () => {
      const h = await factory();
      let store = h.store;
      try {
        await fn(
          async (...changes) => {
            await store.apply(changes);
          },
          async () => {
            store = await h.reopen();
            const list = await store.load();
            return new Map(list.map((s) => [s.clientId, s]));
          },
        );
      } finally {
        await h.close?.();
      }
    };

    it('a session put comes back as it was: connect info with binary password, will, user properties', run(async (apply, reload) => {
      const snap = sessionSnapshot('c1');
      await apply({ op: 'put', session: snap });
      const back = await reload();
      expect(normal(back.get('c1'))).toEqual(normal(snap));
      expect(back.size).toBe(1);
    }));

    it('subscriptions are added and removed; offline records when and for how long', run(async (apply, reload) => {
      await apply({ op: 'put', session: sessionSnapshot('c1') });
      const opts = { qos: 1 as const, noLocal: false, retainAsPublished: true, retainHandling: 0 as const, subscriptionId: 7, shareGroup: undefined, limit: undefined };
      await apply(
        { op: 'subscribe', clientId: 'c1', subscription: { rawFilter: 'a/#', options: opts } },
        { op: 'subscribe', clientId: 'c1', subscription: { rawFilter: '$share/g/b/+', options: { ...opts, shareGroup: 'g' } } },
        { op: 'subscribe', clientId: 'c1', subscription: { rawFilter: 'odd/%2F/!/x', options: opts } },
      );
      await apply({ op: 'unsubscribe', clientId: 'c1', rawFilter: 'a/#' }, { op: 'offline', clientId: 'c1', at: 1_700_000_100_000, expiryInterval: 60 });
      const s = (await reload()).get('c1')!;
      expect(s.subscriptions.map((x) => x.rawFilter).sort()).toEqual(['$share/g/b/+', 'odd/%2F/!/x']);
      expect(s.subscriptions.find((x) => x.rawFilter === '$share/g/b/+')!.options).toEqual({ ...opts, shareGroup: 'g' });
      expect(s.disconnectedAt).toBe(1_700_000_100_000);
      expect(s.expiryInterval).toBe(60);
    }));

    it('the queue keeps its order across many entries; dequeue takes the oldest', run(async (apply, reload) => {
      await apply({ op: 'put', session: sessionSnapshot('c1') });
      const msgs = Array.from({ length: 300 }, (_, i) => storedMessage(`t/${i}`, `p${i}`));
      await apply(...msgs.map((m): SessionChange => ({ op: 'enqueue', clientId: 'c1', delivery: delivery(m) })));
      await apply({ op: 'dequeue', clientId: 'c1' }, { op: 'dequeue', clientId: 'c1' });
      const s = (await reload()).get('c1')!;
      expect(s.queued.map((d) => d.message.topic)).toEqual(msgs.slice(2).map((m) => m.topic));
      expect(s.queued[0]!.message.payload.toString()).toBe('p2');
    }));

    it('inflight: from the queue, state changes, completion; awaiting PUBREL ids', run(async (apply, reload) => {
      await apply({ op: 'put', session: sessionSnapshot('c1') });
      const [a, b, c] = [storedMessage('a', 'A', { qos: 2 }), storedMessage('b', 'B'), storedMessage('c', 'C')];
      await apply({ op: 'enqueue', clientId: 'c1', delivery: delivery(a, { qos: 2 }) }, { op: 'enqueue', clientId: 'c1', delivery: delivery(b) });
      await apply({ op: 'inflight', clientId: 'c1', delivery: inflight(a, 10, { qos: 2 }), fromQueue: true });
      await apply({ op: 'inflight', clientId: 'c1', delivery: inflight(c, 11, { subscriptionIds: [3, 4], retain: true }), fromQueue: false });
      await apply({ op: 'inflight', clientId: 'c1', delivery: inflight(a, 10, { qos: 2, state: 'pubrel' }), fromQueue: false });
      await apply({ op: 'complete', clientId: 'c1', packetId: 11 });
      await apply({ op: 'awaitRel', clientId: 'c1', packetId: 5, pending: true }, { op: 'awaitRel', clientId: 'c1', packetId: 6, pending: true });
      await apply({ op: 'awaitRel', clientId: 'c1', packetId: 5, pending: false });
      const s = (await reload()).get('c1')!;
      expect(s.queued.map((d) => d.message.topic)).toEqual(['b']);
      expect(s.inflight).toHaveLength(1);
      expect(s.inflight[0]).toMatchObject({ packetId: 10, state: 'pubrel', qos: 2 });
      expect(s.inflight[0]!.message.payload.toString()).toBe('A');
      expect([...s.awaitingRel]).toEqual([6]);
    }));

    it('a message for many sessions comes back to each; a completed delivery is gone', run(async (apply, reload) => {
      const m = storedMessage('fan/out', Buffer.from(Array.from({ length: 256 }, (_, i) => i)), {
        qos: 2,
        properties: { correlationData: Buffer.from([9, 8, 7]), userProperties: [['a', 'b']], contentType: 'bin', messageExpiryInterval: 600 },
        expiresAt: 1_800_000_000_000,
      });
      const ids = Array.from({ length: 20 }, (_, i) => `s${i}`);
      await apply(...ids.map((id): SessionChange => ({ op: 'put', session: sessionSnapshot(id) })));
      await apply(...ids.map((id): SessionChange => ({ op: 'enqueue', clientId: id, delivery: delivery(m, { qos: 2 }) })));
      await apply(...ids.slice(0, 10).map((id): SessionChange => ({ op: 'dequeue', clientId: id })));
      const back = await reload();
      for (const [i, id] of ids.entries()) {
        const q = back.get(id)!.queued;
        if (i < 10) expect(q).toEqual([]);
        else {
          expect(q).toHaveLength(1);
          expect(q[0]!.message).toEqual(m);
        }
      }
    }));

    it('a message queued for one session and, later, for another stays whole for each until its last delivery goes', run(async (apply, reload) => {
      const m = storedMessage('later/shared', Buffer.from([1, 2, 3]));
      await apply({ op: 'put', session: sessionSnapshot('s1') }, { op: 'put', session: sessionSnapshot('s2') });
      await apply({ op: 'enqueue', clientId: 's1', delivery: delivery(m) });
      await apply({ op: 'enqueue', clientId: 's2', delivery: delivery(m) });
      await apply({ op: 'dequeue', clientId: 's1' });
      let back = await reload();
      expect(back.get('s1')!.queued).toEqual([]);
      expect(back.get('s2')!.queued.map((d) => d.message)).toEqual([m]);
      await apply({ op: 'enqueue', clientId: 's1', delivery: delivery(m) }, { op: 'dequeue', clientId: 's2' });
      back = await reload();
      expect(back.get('s1')!.queued.map((d) => d.message)).toEqual([m]);
      expect(back.get('s2')!.queued).toEqual([]);
    }));

    it('remove drops everything of a session; changes for unknown sessions are ignored', run(async (apply, reload) => {
      const m = storedMessage('x', 'y');
      await apply({ op: 'put', session: sessionSnapshot('gone') }, { op: 'put', session: sessionSnapshot('kept') });
      await apply(
        { op: 'enqueue', clientId: 'gone', delivery: delivery(m) },
        { op: 'inflight', clientId: 'gone', delivery: inflight(m, 1), fromQueue: false },
        { op: 'awaitRel', clientId: 'gone', packetId: 2, pending: true },
        { op: 'enqueue', clientId: 'kept', delivery: delivery(m) },
      );
      await apply({ op: 'remove', clientId: 'gone' }, { op: 'enqueue', clientId: 'nobody', delivery: delivery(m) }, { op: 'offline', clientId: 'nobody', at: 1, expiryInterval: 1 });
      const back = await reload();
      expect([...back.keys()]).toEqual(['kept']);
      expect(back.get('kept')!.queued[0]!.message.payload.toString()).toBe('y');
    }));

    it('a put over a stored session replaces it (a resumed session written afresh)', run(async (apply, reload) => {
      const [a, b] = [storedMessage('a', '1'), storedMessage('b', '2')];
      await apply({ op: 'put', session: sessionSnapshot('c1') }, { op: 'enqueue', clientId: 'c1', delivery: delivery(a) }, { op: 'awaitRel', clientId: 'c1', packetId: 9, pending: true });
      await apply({ op: 'put', session: sessionSnapshot('c1', { queued: [delivery(b)], inflight: [inflight(a, 3)], expiryInterval: 7 }) });
      await apply({ op: 'enqueue', clientId: 'c1', delivery: delivery(a) });
      const s = (await reload()).get('c1')!;
      expect(s.expiryInterval).toBe(7);
      expect(s.queued.map((d) => d.message.topic)).toEqual(['b', 'a']);
      expect(s.inflight.map((d) => d.packetId)).toEqual([3]);
      expect(s.awaitingRel).toEqual([]);
    }));

    it('changes within one batch apply in order', run(async (apply, reload) => {
      const m = storedMessage('t', 'p');
      await apply(
        { op: 'put', session: sessionSnapshot('c1') },
        { op: 'enqueue', clientId: 'c1', delivery: delivery(m) },
        { op: 'inflight', clientId: 'c1', delivery: inflight(m, 1), fromQueue: true },
        { op: 'complete', clientId: 'c1', packetId: 1 },
        { op: 'remove', clientId: 'c1' },
        { op: 'put', session: sessionSnapshot('c1', { expiryInterval: 99 }) },
      );
      const s = (await reload()).get('c1')!;
      expect(s.expiryInterval).toBe(99);
      expect(s.queued).toEqual([]);
      expect(s.inflight).toEqual([]);
    }));

    it('a write that fails keeps its changes: the next call writes them, in order', () =>
      whenOffered(factory, 'breakWrites', async (h) => {
        const [a, b, c] = [storedMessage('a', '1'), storedMessage('b', '2'), storedMessage('c', '3')];
        await h.store.apply([{ op: 'put', session: sessionSnapshot('c1') }, { op: 'enqueue', clientId: 'c1', delivery: delivery(a) }]);
        h.breakWrites(true);
        await expect(Promise.resolve().then(() => h.store.apply([{ op: 'enqueue', clientId: 'c1', delivery: delivery(b) }]))).rejects.toThrow();
        await expect(Promise.resolve().then(() => h.store.apply([]))).rejects.toThrow();
        h.breakWrites(false);
        await h.store.apply([]);
        await h.store.apply([{ op: 'enqueue', clientId: 'c1', delivery: delivery(c) }]);
        const s = (await (await h.reopen()).load()).find((x) => x.clientId === 'c1')!;
        expect(s.queued.map((d) => d.message.payload.toString())).toEqual(['1', '2', '3']);
      }));

    it('a reopened store goes on from where it was', run(async (apply, reload) => {
      const [a, b] = [storedMessage('a', '1'), storedMessage('b', '2')];
      await apply({ op: 'put', session: sessionSnapshot('c1') }, { op: 'enqueue', clientId: 'c1', delivery: delivery(a) });
      await reload();
      await apply({ op: 'enqueue', clientId: 'c1', delivery: delivery(b) }, { op: 'dequeue', clientId: 'c1' });
      const s = (await reload()).get('c1')!;
      expect(s.queued.map((d) => d.message.topic)).toEqual(['b']);
    }));
  });
}
