/**
 * A SessionStore over a key-value store (the embedded LevelDB store or Redis). The kernel's change log
 * becomes writes to these keys (every part percent-encoded):
 *
 *   s/{client}             the session: connect info, created/disconnected time, expiry
 *   b/{client}/{filter}    one subscription
 *   q/{client}/{seq}       one queued delivery: message id, QoS, retain, subscription ids
 *   i/{client}/{packetId}  one inflight delivery, with its state (publish / pubrel)
 *   r/{client}/{packetId}  an inbound QoS 2 packet id waiting for PUBREL
 *   m/{messageId}          a message, once, however many deliveries refer to it
 *
 * A batch of changes is one write: a message and the deliveries that refer to it land together. A
 * message is deleted with its last reference. Which keys exist is mirrored in memory (ids only, never
 * payloads), so a change never has to read the store.
 */
import type { DeliverySnapshot, InflightSnapshot, Message, SessionChange, SessionSnapshot, SessionStore, SubscriptionSnapshot } from '@rmqtt-ts/plugin-api';
import { KvBatch, decodeJson, decodeMessage, encodeJson, encodeMessage, kvKey, kvKeyParts, type KvStore } from '@rmqtt-ts/plugin-api/storage';

/** A session record: the snapshot without what has keys of its own. */
type SessionRecord = Omit<SessionSnapshot, 'subscriptions' | 'inflight' | 'queued' | 'awaitingRel'>;

interface DeliveryRecord {
  m: number;
  qos: DeliverySnapshot['qos'];
  retain: boolean;
  subIds: readonly number[];
}

interface InflightRecord extends DeliveryRecord {
  state: InflightSnapshot['state'];
}

/** What the store holds for one session, as ids and keys. */
interface Mirror {
  /** The client id as a key part (percent-encoded once). */
  readonly ek: string;
  record: SessionRecord;
  subscriptions: Set<string>;
  /** Queued deliveries, oldest first: [seq, message id]. */
  queue: Array<[number, number]>;
  /** Index of the oldest queue entry still there (the array is compacted now and then). */
  head: number;
  nextSeq: number;
  inflight: Map<number, number>;
  awaitingRel: Set<number>;
}

const SEQ_WIDTH = 12;
const seqKey = (n: number): string => n.toString(16).padStart(SEQ_WIDTH, '0');

export class KvSessionStore implements SessionStore {
  readonly #kv: KvStore;
  readonly #sessions = new Map<string, Mirror>();
  /** References to each stored message. */
  readonly #refs = new Map<number, number>();
  /** Writes of a call that failed, sent again with the next one. */
  #pending: KvBatch | null = null;

  constructor(kv: KvStore) {
    this.#kv = kv;
  }

  get description(): string {
    return this.#kv.description;
  }

  /** Read every session back. Orphaned messages (left by a crash between Redis shards) are removed. */
  async load(): Promise<SessionSnapshot[]> {
    const records = new Map<string, SessionRecord>();
    const subs = new Map<string, SubscriptionSnapshot[]>();
    const queued = new Map<string, Array<[number, DeliveryRecord]>>();
    const inflight = new Map<string, Array<[number, InflightRecord]>>();
    const rel = new Map<string, number[]>();
    const messages = new Map<number, Message>();
    const push = <T>(m: Map<string, T[]>, k: string, v: T): void => {
      const a = m.get(k);
      if (a === undefined) m.set(k, [v]);
      else a.push(v);
    };
    for await (const [key, value] of this.#kv.entries()) {
      const parts = kvKeyParts(key);
      const [kind, a, b] = parts;
      try {
        switch (kind) {
          case 's':
            records.set(a!, decodeJson<SessionRecord>(value));
            break;
          case 'b':
            push(subs, a!, decodeJson<SubscriptionSnapshot>(value));
            break;
          case 'q':
            push(queued, a!, [parseInt(b!, 16), decodeJson<DeliveryRecord>(value)]);
            break;
          case 'i':
            push(inflight, a!, [Number(b), decodeJson<InflightRecord>(value)]);
            break;
          case 'r':
            push(rel, a!, Number(b));
            break;
          case 'm':
            messages.set(Number(a), decodeMessage(value));
            break;
          default:
            throw new Error('unknown kind of key');
        }
      } catch (err) {
        throw new Error(`${this.#kv.description}: unreadable entry "${key}": ${(err as Error).message}`, { cause: err });
      }
    }

    this.#sessions.clear();
    this.#refs.clear();
    const out: SessionSnapshot[] = [];
    const cleanup = new KvBatch();
    const ref = (id: number): void => {
      this.#refs.set(id, (this.#refs.get(id) ?? 0) + 1);
    };
    for (const [clientId, record] of records) {
      const m: Mirror = { ek: encodeURIComponent(clientId), record, subscriptions: new Set(), queue: [], head: 0, nextSeq: 0, inflight: new Map(), awaitingRel: new Set() };
      const snapSubs = subs.get(clientId) ?? [];
      for (const s of snapSubs) m.subscriptions.add(s.rawFilter);
      const snapQueued: DeliverySnapshot[] = [];
      for (const [seq, d] of (queued.get(clientId) ?? []).sort((x, y) => x[0] - y[0])) {
        const message = messages.get(d.m);
        m.nextSeq = Math.max(m.nextSeq, seq + 1);
        if (message === undefined) {
          // its message never landed (a crash between Redis shards): the reference goes
          cleanup.del(kvKey('q', clientId, seqKey(seq)));
          continue;
        }
        m.queue.push([seq, d.m]);
        ref(d.m);
        snapQueued.push({ message, qos: d.qos, retain: d.retain, subscriptionIds: d.subIds });
      }
      const snapInflight: InflightSnapshot[] = [];
      for (const [packetId, d] of inflight.get(clientId) ?? []) {
        const message = messages.get(d.m);
        if (message === undefined) {
          cleanup.del(kvKey('i', clientId, packetId));
          continue;
        }
        m.inflight.set(packetId, d.m);
        ref(d.m);
        snapInflight.push({ message, qos: d.qos, retain: d.retain, subscriptionIds: d.subIds, packetId, state: d.state });
      }
      for (const id of rel.get(clientId) ?? []) m.awaitingRel.add(id);
      this.#sessions.set(clientId, m);
      out.push({ ...record, subscriptions: snapSubs, inflight: snapInflight, queued: snapQueued, awaitingRel: [...m.awaitingRel] });
    }
    // parts of sessions whose record is gone, and messages nothing refers to
    for (const [kind, map] of [['b', subs], ['q', queued], ['i', inflight], ['r', rel]] as const) {
      for (const [clientId, items] of map as Map<string, unknown[]>) {
        if (records.has(clientId)) continue;
        for (const item of items) {
          if (kind === 'b') cleanup.del(kvKey('b', clientId, (item as SubscriptionSnapshot).rawFilter));
          else if (kind === 'q') cleanup.del(kvKey('q', clientId, seqKey((item as [number, unknown])[0])));
          else if (kind === 'i') cleanup.del(kvKey('i', clientId, (item as [number, unknown])[0]));
          else cleanup.del(kvKey('r', clientId, item as number));
        }
      }
    }
    for (const id of messages.keys()) if (!this.#refs.has(id)) cleanup.del(kvKey('m', id));
    if (cleanup.size > 0) await this.#kv.write(cleanup.ops());
    return out;
  }

  /**
   * The changes become writes at once (the mirror moves on); a write that fails stays pending and goes
   * out with the next call, merged with its writes (the kernel retries with no changes).
   */
  apply(changes: readonly SessionChange[]): Promise<void> {
    const batch = this.#pending ?? new KvBatch();
    // messages first referred to in this batch, written once at the end if still referred to
    const fresh = new Map<number, Message>();
    for (const c of changes) this.#apply(c, batch, fresh);
    for (const [id, msg] of fresh) if ((this.#refs.get(id) ?? 0) > 0) batch.put(`m/${id}`, encodeMessage(msg));
    if (batch.size === 0) return Promise.resolve();
    this.#pending = batch;
    return this.#kv.write(batch.ops()).then(() => {
      if (this.#pending === batch) this.#pending = null;
    });
  }

  close(): Promise<void> {
    return this.#kv.close();
  }

  #ref(msg: Message, batch: KvBatch, fresh: Map<number, Message>): void {
    const n = this.#refs.get(msg.id) ?? 0;
    this.#refs.set(msg.id, n + 1);
    if (n === 0) fresh.set(msg.id, msg);
  }

  #unref(id: number, batch: KvBatch): void {
    const n = (this.#refs.get(id) ?? 0) - 1;
    if (n > 0) {
      this.#refs.set(id, n);
      return;
    }
    this.#refs.delete(id);
    batch.del(`m/${id}`);
  }

  #removeAll(clientId: string, m: Mirror, batch: KvBatch): void {
    batch.del(`s/${m.ek}`);
    for (const f of m.subscriptions) batch.del(`b/${m.ek}/${encodeURIComponent(f)}`);
    for (let i = m.head; i < m.queue.length; i++) {
      const [seq, id] = m.queue[i]!;
      batch.del(`q/${m.ek}/${seqKey(seq)}`);
      this.#unref(id, batch);
    }
    for (const [packetId, id] of m.inflight) {
      batch.del(`i/${m.ek}/${packetId}`);
      this.#unref(id, batch);
    }
    for (const packetId of m.awaitingRel) batch.del(`r/${m.ek}/${packetId}`);
    this.#sessions.delete(clientId);
  }

  #popQueue(clientId: string, m: Mirror, batch: KvBatch): void {
    if (m.head >= m.queue.length) return;
    const [seq, id] = m.queue[m.head]!;
    m.head++;
    if (m.head > 1024 && m.head * 2 > m.queue.length) {
      m.queue.splice(0, m.head);
      m.head = 0;
    }
    batch.del(`q/${m.ek}/${seqKey(seq)}`);
    this.#unref(id, batch);
  }

  #apply(c: SessionChange, batch: KvBatch, fresh: Map<number, Message>): void {
    if (c.op === 'put') {
      const s = c.session;
      const old = this.#sessions.get(s.clientId);
      if (old !== undefined) this.#removeAll(s.clientId, old, batch);
      const { subscriptions, inflight, queued, awaitingRel, ...record } = s;
      const m: Mirror = { ek: encodeURIComponent(s.clientId), record, subscriptions: new Set(), queue: [], head: 0, nextSeq: old?.nextSeq ?? 0, inflight: new Map(), awaitingRel: new Set() };
      this.#sessions.set(s.clientId, m);
      batch.put(`s/${m.ek}`, encodeJson(record));
      for (const sub of subscriptions) {
        m.subscriptions.add(sub.rawFilter);
        batch.put(`b/${m.ek}/${encodeURIComponent(sub.rawFilter)}`, encodeJson(sub));
      }
      for (const d of queued) this.#enqueue(s.clientId, m, d, batch, fresh);
      for (const d of inflight) this.#inflight(s.clientId, m, d, batch, fresh);
      for (const id of awaitingRel) {
        m.awaitingRel.add(id);
        batch.put(`r/${m.ek}/${id}`, EMPTY);
      }
      return;
    }
    const m = this.#sessions.get(c.clientId);
    // a change for a session that was never put (or already removed): nothing to keep
    if (m === undefined) return;
    switch (c.op) {
      case 'remove':
        this.#removeAll(c.clientId, m, batch);
        break;
      case 'subscribe':
        m.subscriptions.add(c.subscription.rawFilter);
        batch.put(`b/${m.ek}/${encodeURIComponent(c.subscription.rawFilter)}`, encodeJson(c.subscription));
        break;
      case 'unsubscribe':
        if (m.subscriptions.delete(c.rawFilter)) batch.del(`b/${m.ek}/${encodeURIComponent(c.rawFilter)}`);
        break;
      case 'offline':
        m.record = { ...m.record, disconnectedAt: c.at, expiryInterval: c.expiryInterval };
        batch.put(`s/${m.ek}`, encodeJson(m.record));
        break;
      case 'enqueue':
        this.#enqueue(c.clientId, m, c.delivery, batch, fresh);
        break;
      case 'dequeue':
        this.#popQueue(c.clientId, m, batch);
        break;
      case 'inflight':
        if (c.fromQueue) this.#popQueue(c.clientId, m, batch);
        this.#inflight(c.clientId, m, c.delivery, batch, fresh);
        break;
      case 'complete': {
        const id = m.inflight.get(c.packetId);
        if (id === undefined) break;
        m.inflight.delete(c.packetId);
        batch.del(`i/${m.ek}/${c.packetId}`);
        this.#unref(id, batch);
        break;
      }
      case 'awaitRel':
        if (c.pending) {
          m.awaitingRel.add(c.packetId);
          batch.put(`r/${m.ek}/${c.packetId}`, EMPTY);
        } else if (m.awaitingRel.delete(c.packetId)) {
          batch.del(`r/${m.ek}/${c.packetId}`);
        }
        break;
    }
  }

  #enqueue(clientId: string, m: Mirror, d: DeliverySnapshot, batch: KvBatch, fresh: Map<number, Message>): void {
    const seq = m.nextSeq++;
    m.queue.push([seq, d.message.id]);
    this.#ref(d.message, batch, fresh);
    const r: DeliveryRecord = { m: d.message.id, qos: d.qos, retain: d.retain, subIds: d.subscriptionIds };
    batch.put(`q/${m.ek}/${seqKey(seq)}`, plainJson(r));
  }

  #inflight(clientId: string, m: Mirror, d: InflightSnapshot, batch: KvBatch, fresh: Map<number, Message>): void {
    const before = m.inflight.get(d.packetId);
    this.#ref(d.message, batch, fresh);
    if (before !== undefined) this.#unref(before, batch);
    m.inflight.set(d.packetId, d.message.id);
    const r: InflightRecord = { m: d.message.id, qos: d.qos, retain: d.retain, subIds: d.subscriptionIds, state: d.state };
    batch.put(`i/${m.ek}/${d.packetId}`, plainJson(r));
  }
}

const EMPTY = Buffer.alloc(0);

/** A record with nothing but numbers, booleans and strings in it: no Buffer walk needed. */
function plainJson(value: DeliveryRecord | InflightRecord): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}
