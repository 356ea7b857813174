/**
 * A SessionStore over a key-value store (the embedded LMDB store or Redis). The kernel's change log
 * becomes writes to these keys (every part percent-encoded):
 *
 *   s/{client}             the session: connect info, created/disconnected time, expiry
 *   b/{client}/{filter}    one subscription
 *   q/{client}/{seq}       one queued delivery: message id, QoS, retain, subscription ids
 *   i/{client}/{packetId}  one inflight delivery, with its state (publish / pubrel)
 *   r/{client}/{packetId}  an inbound QoS 2 packet id waiting for PUBREL
 *   m/{messageId}          a message that several deliveries refer to, stored once
 *
 * A message only one delivery refers to (the common case: one persistent subscriber) travels inside
 * that delivery's record instead, so a QoS 1 message to one session costs one put when it is sent and
 * one delete when it is acknowledged. A batch of changes is one write: a message and the deliveries
 * that refer to it land together. A shared message is deleted with its last reference. Which keys
 * exist is mirrored in memory (ids only, never payloads), so a change never has to read the store.
 *
 * A delivery record's value: 4-byte length, the JSON record, then the message (encodeMessage) when
 * it travels inline.
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

/** A delivery record whose value is settled at the end of the call (inline message or a reference). */
interface PendingRecord {
  readonly op: { value: Buffer };
  readonly record: DeliveryRecord | InflightRecord;
  readonly message: Message;
}

function recordValue(record: DeliveryRecord | InflightRecord, message: Message | undefined): Buffer {
  const json = Buffer.from(JSON.stringify(record), 'utf8');
  const body = message === undefined ? undefined : encodeMessage(message);
  const out = Buffer.allocUnsafe(4 + json.length + (body?.length ?? 0));
  out.writeUInt32BE(json.length, 0);
  json.copy(out, 4);
  body?.copy(out, 4 + json.length);
  return out;
}

function readRecord<R>(value: Buffer): { record: R; message: Message | undefined } {
  if (value.length < 4) throw new Error('record too short');
  const n = value.readUInt32BE(0);
  if (4 + n > value.length) throw new Error('record length overruns its value');
  const record = decodeJson<R>(value.subarray(4, 4 + n));
  return { record, message: 4 + n < value.length ? decodeMessage(value.subarray(4 + n)) : undefined };
}

const SEQ_WIDTH = 12;
const seqKey = (n: number): string => n.toString(16).padStart(SEQ_WIDTH, '0');

export class KvSessionStore implements SessionStore {
  readonly #kv: KvStore;
  readonly #sessions = new Map<string, Mirror>();
  /** References to each stored message. */
  readonly #refs = new Map<number, number>();
  /** Messages stored under m/ (referred to by more than one delivery at some point). */
  readonly #shared = new Set<number>();
  /** Delivery records of the call under way, settled at its end. */
  #pending: PendingRecord[] = [];
  /** Writes collected for the next write (and those of a write that failed). */
  #next = new KvBatch();
  #nextWaiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  #writing = false;

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
    /** Messages carried inside delivery records. */
    const inline = new Map<number, Message>();
    const readDelivery = <R extends DeliveryRecord>(value: Buffer): R => {
      const { record, message } = readRecord<R>(value);
      if (message !== undefined) inline.set(record.m, message);
      return record;
    };
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
            push(queued, a!, [parseInt(b!, 16), readDelivery<DeliveryRecord>(value)]);
            break;
          case 'i':
            push(inflight, a!, [Number(b), readDelivery<InflightRecord>(value)]);
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
    this.#shared.clear();
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
        const message = messages.get(d.m) ?? inline.get(d.m);
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
        const message = messages.get(d.m) ?? inline.get(d.m);
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
    for (const id of messages.keys()) {
      if (this.#refs.has(id)) this.#shared.add(id);
      else cleanup.del(kvKey('m', id));
    }
    if (cleanup.size > 0) await this.#kv.write(cleanup.ops());
    return out;
  }

  /**
   * The changes become writes at once (the mirror moves on). Writes go out one at a time, in order:
   * while one is under way the next calls' writes collect and go out together when it is done. A write
   * that fails rejects the calls it carried and stays pending, merged under the newer writes; the next
   * call (the kernel retries with no changes) sends it again.
   */
  apply(changes: readonly SessionChange[]): Promise<void> {
    const batch = this.#next;
    for (const c of changes) this.#apply(c, batch);
    this.#settleRecords(batch);
    const done = new Promise<void>((resolve, reject) => this.#nextWaiters.push({ resolve, reject }));
    if (!this.#writing) this.#writeNext();
    return done;
  }

  readonly #afterTurn = (): void => {
    this.#writing = false;
    if (this.#nextWaiters.length > 0) this.#writeNext();
  };

  #writeNext(): void {
    const batch = this.#next;
    const waiters = this.#nextWaiters;
    this.#next = new KvBatch();
    this.#nextWaiters = [];
    if (batch.size === 0) {
      for (const w of waiters) w.resolve();
      return;
    }
    this.#writing = true;
    this.#kv.write(batch.ops()).then(
      () => {
        for (const w of waiters) w.resolve();
        // the next write after one turn of the event loop: the connections this write released read
        // and handle their next packets first, and their changes join it (larger, fewer writes)
        setImmediate(this.#afterTurn);
      },
      (err: unknown) => {
        this.#writing = false;
        // kept for the next call, under what was collected meanwhile
        batch.merge(this.#next);
        this.#next = batch;
        for (const w of waiters) w.reject(err);
      },
    );
  }

  close(): Promise<void> {
    return this.#kv.close();
  }

  /**
   * The call's delivery records get their values: a message referred to once (and not shared already)
   * travels inside its record; one referred to more often is written once under m/.
   */
  #settleRecords(batch: KvBatch): void {
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#pending = [];
    for (const p of pending) {
      const id = p.message.id;
      const refs = this.#refs.get(id) ?? 0;
      // no reference left: the record was deleted again within the call
      if (refs === 0) continue;
      if (refs > 1 && !this.#shared.has(id)) {
        this.#shared.add(id);
        batch.put(`m/${id}`, encodeMessage(p.message));
      }
      p.op.value = recordValue(p.record, this.#shared.has(id) ? undefined : p.message);
    }
  }

  #ref(msg: Message): void {
    this.#refs.set(msg.id, (this.#refs.get(msg.id) ?? 0) + 1);
  }

  #unref(id: number, batch: KvBatch): void {
    const n = (this.#refs.get(id) ?? 0) - 1;
    if (n > 0) {
      this.#refs.set(id, n);
      return;
    }
    this.#refs.delete(id);
    if (this.#shared.delete(id)) batch.del(`m/${id}`);
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

  #apply(c: SessionChange, batch: KvBatch): void {
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
      for (const d of queued) this.#enqueue(m, d, batch);
      for (const d of inflight) this.#inflight(m, d, batch);
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
        this.#enqueue(m, c.delivery, batch);
        break;
      case 'dequeue':
        this.#popQueue(c.clientId, m, batch);
        break;
      case 'inflight':
        if (c.fromQueue) this.#popQueue(c.clientId, m, batch);
        this.#inflight(m, c.delivery, batch);
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

  #enqueue(m: Mirror, d: DeliverySnapshot, batch: KvBatch): void {
    const seq = m.nextSeq++;
    m.queue.push([seq, d.message.id]);
    this.#ref(d.message);
    const record: DeliveryRecord = { m: d.message.id, qos: d.qos, retain: d.retain, subIds: d.subscriptionIds };
    this.#pending.push({ op: batch.putLater(`q/${m.ek}/${seqKey(seq)}`), record, message: d.message });
  }

  #inflight(m: Mirror, d: InflightSnapshot, batch: KvBatch): void {
    const before = m.inflight.get(d.packetId);
    this.#ref(d.message);
    if (before !== undefined) this.#unref(before, batch);
    m.inflight.set(d.packetId, d.message.id);
    const record: InflightRecord = { m: d.message.id, qos: d.qos, retain: d.retain, subIds: d.subscriptionIds, state: d.state };
    this.#pending.push({ op: batch.putLater(`i/${m.ek}/${d.packetId}`), record, message: d.message });
  }
}

const EMPTY = Buffer.alloc(0);

