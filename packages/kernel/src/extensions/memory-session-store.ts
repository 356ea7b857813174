/**
 * The kernel's default SessionStore: persistent-session state kept in memory (lost at exit). It applies
 * the same change log a durable store would, so `load()` returns what a restart would restore — and it
 * is the reference implementation the conformance suite is written against.
 */
import type {
  DeliverySnapshot,
  InflightSnapshot,
  SessionChange,
  SessionSnapshot,
  SessionStore,
  SubscriptionSnapshot,
} from '@rmqtt-ts/plugin-api';

interface Mutable {
  base: SessionSnapshot;
  subscriptions: Map<string, SubscriptionSnapshot>;
  inflight: Map<number, InflightSnapshot>;
  queued: DeliverySnapshot[];
  awaitingRel: Set<number>;
  disconnectedAt: number | undefined;
  expiryInterval: number;
}

export class MemorySessionStore implements SessionStore {
  readonly #sessions = new Map<string, Mutable>();

  load(): SessionSnapshot[] {
    const out: SessionSnapshot[] = [];
    for (const m of this.#sessions.values()) {
      out.push({
        ...m.base,
        disconnectedAt: m.disconnectedAt,
        expiryInterval: m.expiryInterval,
        subscriptions: [...m.subscriptions.values()],
        inflight: [...m.inflight.values()],
        queued: [...m.queued],
        awaitingRel: [...m.awaitingRel],
      });
    }
    return out;
  }

  apply(changes: readonly SessionChange[]): void {
    for (const c of changes) this.#apply(c);
  }

  #apply(c: SessionChange): void {
    if (c.op === 'put') {
      const s = c.session;
      this.#sessions.set(s.clientId, {
        base: s,
        subscriptions: new Map(s.subscriptions.map((x) => [x.rawFilter, x])),
        inflight: new Map(s.inflight.map((x) => [x.packetId, x])),
        queued: [...s.queued],
        awaitingRel: new Set(s.awaitingRel),
        disconnectedAt: s.disconnectedAt,
        expiryInterval: s.expiryInterval,
      });
      return;
    }
    if (c.op === 'remove') {
      this.#sessions.delete(c.clientId);
      return;
    }
    const m = this.#sessions.get(c.clientId);
    if (!m) return; // a change for a session that was never put (or already removed): nothing to keep
    switch (c.op) {
      case 'subscribe':
        m.subscriptions.set(c.subscription.rawFilter, c.subscription);
        break;
      case 'unsubscribe':
        m.subscriptions.delete(c.rawFilter);
        break;
      case 'offline':
        m.disconnectedAt = c.at;
        m.expiryInterval = c.expiryInterval;
        break;
      case 'enqueue':
        m.queued.push(c.delivery);
        break;
      case 'dequeue':
        m.queued.shift();
        break;
      case 'inflight':
        if (c.fromQueue) m.queued.shift();
        m.inflight.set(c.delivery.packetId, c.delivery);
        break;
      case 'complete':
        m.inflight.delete(c.packetId);
        break;
      case 'awaitRel':
        if (c.pending) m.awaitingRel.add(c.packetId);
        else m.awaitingRel.delete(c.packetId);
        break;
    }
  }
}
