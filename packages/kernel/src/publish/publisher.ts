/**
 * The publish pipeline: (topic alias and `$delayed/` already resolved by the caller) → publish ACL →
 * message.publish (transform) → retain → route locally → forward to the cluster. Nothing after a
 * rejection sees the message. Also the per-delivery bookkeeping (delivered / acked / dropped) and what
 * a new subscription receives (retained and stored messages).
 */
import {
  ReasonCode,
  type AdminPublish,
  type ClientInfo,
  type DropReason,
  type Message,
  type MessageFrom,
  type MessageOrigin,
  type PublishAclResult,
  type QoS,
  type WillInfo,
} from '@rmqtt-ts/plugin-api';
import type { Kernel } from '../kernel.js';
import { C, type CounterName } from '../metrics/metrics.js';
import type { Session, SessionSubscription } from '../session/session.js';
import type { KernelRoute } from '../session/subscriptions.js';
import { Dispatcher, sharedRecipient } from './dispatch.js';

export interface PublishOutcome {
  /** false: refused by the ACL. */
  readonly allowed: boolean;
  /** Sessions on this node that got it (0 → v5 PUBACK may say 0x10). */
  readonly matched: number;
  readonly reasonCode: number;
  readonly disconnect: boolean;
}

const DENY: PublishAclResult = Object.freeze({ allow: false });
/** The `messages.dropped.<reason>` counter of each drop reason. */
const DROPPED_INDEX: ReadonlyMap<string, number> = new Map(
  Object.entries(C)
    .filter(([name]) => name.startsWith('messages.dropped.'))
    .map(([name, i]) => [name.slice('messages.dropped.'.length), i]),
);
const ORIGINS: readonly MessageOrigin[] = ['custom', 'admin', 'system', 'lastwill', 'bridge', 'retain'];

function counterIndex(prefix: string, origin: MessageOrigin): number {
  const name = `${prefix}.${origin}`;
  return Object.hasOwn(C, name) ? C[name as CounterName] : -1;
}

export class Publisher {
  readonly #k: Kernel;
  readonly #dispatcher: Dispatcher;
  #delayed = 0;
  readonly #deliveredIdx: Record<string, number> = {};
  readonly #ackedIdx: Record<string, number> = {};
  readonly #publishIdx: Record<string, number> = {};
  readonly #nonsubIdx: Record<string, number> = {};

  constructor(kernel: Kernel) {
    this.#k = kernel;
    this.#dispatcher = new Dispatcher(kernel);
    for (const o of ORIGINS) {
      this.#deliveredIdx[o] = counterIndex('messages.delivered', o);
      this.#ackedIdx[o] = counterIndex('messages.acked', o);
      this.#publishIdx[o] = counterIndex('messages.publish', o);
      this.#nonsubIdx[o] = counterIndex('messages.nonsubscribed', o);
    }
  }

  /**
   * A message through the pipeline. `delaySeconds` > 0 routes it later (`$delayed/`); the ACL and the
   * transform run now, on the resolved topic.
   */
  publish(msg: Message, client: ClientInfo | undefined, superuser: boolean, delaySeconds = 0): PublishOutcome | Promise<PublishOutcome> {
    const k = this.#k;
    if (!superuser && k.hooks.active['message.publishCheckAcl']) {
      k.metrics.counters[C['client.publish.check.acl']]!++;
      const r = k.hooks.decide('message.publishCheckAcl', { client, message: msg }, undefined, DENY);
      if (r instanceof Promise) return r.then((acl) => this.#afterAcl(msg, client, acl, delaySeconds));
      return this.#afterAcl(msg, client, r, delaySeconds);
    }
    return this.#afterAcl(msg, client, undefined, delaySeconds);
  }

  #afterAcl(msg: Message, client: ClientInfo | undefined, acl: PublishAclResult | undefined, delay: number): PublishOutcome | Promise<PublishOutcome> {
    if (acl !== undefined && !acl.allow) {
      this.#k.metrics.counters[C['client.publish.auth.error']]!++;
      return { allowed: false, matched: 0, reasonCode: acl.reasonCode ?? ReasonCode.NotAuthorized, disconnect: acl.disconnect === true };
    }
    const hooks = this.#k.hooks;
    if (hooks.active['message.publish']) {
      const t = hooks.transform('message.publish', msg, { client });
      if (t instanceof Promise) return t.then((m) => this.#accepted(m, delay));
      return this.#accepted(t, delay);
    }
    return this.#accepted(msg, delay);
  }

  #accepted(msg: Message | null, delay: number): PublishOutcome | Promise<PublishOutcome> {
    if (msg === null) return { allowed: true, matched: 0, reasonCode: ReasonCode.Success, disconnect: false };
    const k = this.#k;
    k.metrics.counters[C['messages.publish']]!++;
    const pi = this.#publishIdx[msg.from.type]!;
    if (pi >= 0) k.metrics.counters[pi]!++;
    if (delay > 0) return this.#schedule(msg, delay);
    return this.#route(msg);
  }

  #route(msg: Message): PublishOutcome | Promise<PublishOutcome> {
    const k = this.#k;
    const store = k.ext.retainStore;
    if (msg.retain && store !== null) {
      // an empty payload deletes the retained message of the topic [MQTT-3.3.1-6, -7]
      const r = msg.payload.length === 0 ? store.delete(msg.topic) : store.set(msg);
      if (r instanceof Promise) return r.then(() => this.#deliver(msg), (err: unknown) => {
        k.logger.error({ err, topic: msg.topic }, 'retain store failed');
        return this.#deliver(msg);
      });
    }
    return this.#deliver(msg);
  }

  #deliver(msg: Message): PublishOutcome {
    const k = this.#k;
    const ms = k.ext.messageStore;
    // message storage keeps published messages (retained ones are the retainer's) with who got them
    const recipients = ms !== null && !msg.retain ? [] : undefined;
    const matched = this.#dispatcher.dispatch(msg, Date.now(), recipients);
    if (matched === 0) {
      k.metrics.counters[C['messages.nonsubscribed']]!++;
      const ni = this.#nonsubIdx[msg.from.type]!;
      if (ni >= 0) k.metrics.counters[ni]!++;
      if (k.hooks.active['message.nonsubscribed']) k.hooks.observe('message.nonsubscribed', { message: msg });
    }
    if (recipients !== undefined) this.#safely('message store', () => ms!.store(msg, recipients));
    const cluster = k.ext.cluster;
    this.#safely('cluster forward', () => cluster.forward(msg));
    return { allowed: true, matched, reasonCode: matched === 0 ? ReasonCode.NoMatchingSubscribers : ReasonCode.Success, disconnect: false };
  }

  /** Run an extension point's call; its failure, synchronous or not, is logged and goes no further. */
  #safely(what: string, fn: () => unknown): void {
    try {
      const r = fn();
      if (r instanceof Promise) r.catch((err: unknown) => this.#k.logger.error({ err }, `${what} failed`));
    } catch (err) {
      this.#k.logger.error({ err }, `${what} failed`);
    }
  }

  /**
   * `$delayed/{s}/topic`: route after the delay; over mqtt.delayed_publish_max, now or never by config.
   * A message that expires first is let go at its expiry, so it does not hold memory for the delay.
   */
  #schedule(msg: Message, delay: number): PublishOutcome | Promise<PublishOutcome> {
    const k = this.#k;
    const mq = k.config.mqtt;
    if (this.#delayed >= mq.delayedPublishMax) {
      if (mq.delayedPublishImmediate) return this.#route(msg);
      this.dropped(undefined, msg, 'delayed_limit');
      return { allowed: true, matched: 0, reasonCode: ReasonCode.Success, disconnect: false };
    }
    this.#delayed++;
    k.metrics.gauges.delayed_publishs.inc();
    const due = Date.now() + delay * 1000;
    k.scheduler.at(msg.expiresAt !== 0 && msg.expiresAt < due ? msg.expiresAt : due, () => {
      this.#delayed--;
      k.metrics.gauges.delayed_publishs.dec();
      if (msg.expiresAt !== 0 && msg.expiresAt <= Date.now()) {
        this.dropped(undefined, msg, 'expired');
        return;
      }
      const r = this.#route(msg);
      if (r instanceof Promise) void r.catch((err: unknown) => k.logger.error({ err }, 'delayed publish failed'));
    });
    return { allowed: true, matched: 0, reasonCode: ReasonCode.Success, disconnect: false };
  }

  /** A message forwarded by another node: local delivery only. */
  deliverForwarded(msg: Message): void {
    this.#dispatcher.dispatch(msg, Date.now());
  }

  /**
   * A will goes through the same pipeline, under its client's ACL; a denied will is not published. A
   * 3.x will gets the message_expiry_interval of its client's listener.
   */
  publishWill(s: Session, will: WillInfo): void {
    const k = this.#k;
    const client = s.info;
    const msg = this.createMessage({
      topic: will.topic,
      payload: will.payload,
      qos: will.qos,
      retain: will.retain && k.ext.retainStore !== null,
      properties: will.properties,
      protoVer: client.connectInfo.protoVer,
      listenerExpiryS: s.listener.messageExpiryIntervalS,
      from: { type: 'lastwill', clientId: client.clientId, username: client.username, ip: client.connectInfo.remoteAddr.ip },
    });
    const r = this.publish(msg, client, client.superuser);
    if (r instanceof Promise) void r.catch((err: unknown) => k.logger.error({ err, clientId: client.clientId }, 'will publish failed'));
  }

  /** Publish from the control API (HTTP). With a client id, that client's publish ACL applies. */
  async publishAdmin(input: AdminPublish, client: ClientInfo | undefined, superuser: boolean): Promise<PublishOutcome> {
    const msg = this.createMessage({
      topic: input.topic,
      payload: input.payload,
      qos: input.qos ?? 0,
      retain: (input.retain ?? false) && this.#k.ext.retainStore !== null,
      properties: input.properties ?? {},
      protoVer: undefined,
      listenerExpiryS: input.expirySeconds,
      from: { type: 'admin', clientId: input.clientId ?? 'system', username: client?.username, ip: undefined },
    });
    return this.publish(msg, client, superuser);
  }

  /**
   * Make a message. Expiry: a v5 Message Expiry Interval counts from now; otherwise messages of MQTT 3.x
   * clients, the API and the system get the listener's message_expiry_interval (kept inside the broker,
   * never written out); a v5 message without the property never expires.
   */
  createMessage(input: {
    topic: string;
    payload: Buffer;
    qos: QoS;
    retain: boolean;
    properties: Message['properties'];
    protoVer: number | undefined;
    /** Default expiry for messages without the property (seconds; undefined = the first listener's). */
    listenerExpiryS: number | undefined;
    from: Omit<MessageFrom, 'node'>;
  }): Message {
    const now = Date.now();
    const p = input.properties;
    let expiresAt = 0;
    if (p.messageExpiryInterval !== undefined) {
      expiresAt = now + p.messageExpiryInterval * 1000;
    } else if (input.protoVer !== 5) {
      const s = input.listenerExpiryS ?? this.#k.config.listeners[0]?.messageExpiryIntervalS ?? 0;
      if (s > 0) expiresAt = now + s * 1000;
    }
    const f = input.from;
    return {
      id: this.#k.nextMessageId(),
      topic: input.topic,
      payload: input.payload,
      qos: input.qos,
      retain: input.retain,
      properties: p,
      from: { type: f.type, node: this.#k.nodeId, clientId: f.clientId, username: f.username, ip: f.ip },
      createdAt: now,
      expiresAt,
    };
  }

  // ---- per-delivery bookkeeping (synchronous: these run once per subscriber) ----

  delivered(s: Session, msg: Message, qos: QoS): void {
    const k = this.#k;
    k.metrics.counters[C['messages.delivered']]!++;
    const i = this.#deliveredIdx[msg.from.type]!;
    if (i >= 0) k.metrics.counters[i]!++;
    if (k.hooks.active['message.delivered']) k.hooks.observe('message.delivered', { client: s.info, message: msg, qos });
  }

  acked(s: Session, msg: Message): void {
    const k = this.#k;
    k.metrics.counters[C['messages.acked']]!++;
    const i = this.#ackedIdx[msg.from.type]!;
    if (i >= 0) k.metrics.counters[i]!++;
    if (k.hooks.active['message.acked']) k.hooks.observe('message.acked', { client: s.info, message: msg });
  }

  dropped(clientId: string | undefined, msg: Message, reason: DropReason): void {
    const k = this.#k;
    k.metrics.counters[C['messages.dropped']]!++;
    const i = DROPPED_INDEX.get(reason);
    if (i !== undefined) k.metrics.counters[i]!++;
    if (k.hooks.active['message.dropped']) k.hooks.observe('message.dropped', { clientId, message: msg, reason });
  }

  // ---- what a new subscription receives ----

  /**
   * Retained messages for a subscription, sent after the SUBACK with RETAIN=1 [MQTT-3.3.1-9] and the
   * subscription's identifier; they pass the subscription's ACL filter too.
   */
  sendRetained(s: Session, sub: SessionSubscription): void | Promise<void> {
    const k = this.#k;
    const store = k.ext.retainStore;
    if (store === null) return;
    let found: Message[] | Promise<Message[]>;
    try {
      found = store.match(sub.filter);
    } catch (err) {
      k.logger.error({ err, filter: sub.filter }, 'retain store match failed');
      return;
    }
    if (found instanceof Promise) {
      return found.then(
        (msgs) => this.#sendRetained(s, sub, msgs),
        (err: unknown) => k.logger.error({ err, filter: sub.filter }, 'retain store match failed'),
      );
    }
    this.#sendRetained(s, sub, found);
  }

  #sendRetained(s: Session, sub: SessionSubscription, msgs: readonly Message[]): void {
    const k = this.#k;
    const route = sub.route as KernelRoute;
    const o = sub.options;
    const now = Date.now();
    for (const m of msgs) {
      if (s.terminated) return;
      if (route.deliverIf !== undefined && !route.deliverIf(m.topic)) continue;
      if (s.bridgeIngress && m.from.type === 'bridge') continue;
      k.metrics.counters[C['messages.delivered.retain']]!++;
      s.out.deliver(m, (m.qos < o.qos ? m.qos : o.qos) as QoS, true, route.subIds, null, now);
    }
  }

  /**
   * Stored messages (message storage) for a new subscription: those the session never got — and for a
   * shared subscription, those its group never took — then recorded as delivered.
   */
  async replayStored(s: Session, sub: SessionSubscription): Promise<void> {
    const k = this.#k;
    const ms = k.ext.messageStore;
    if (ms === null) return;
    try {
      const now = Date.now();
      const stored = await ms.match(sub.filter, now);
      const route = sub.route as KernelRoute;
      const o = sub.options;
      const group = o.shareGroup === undefined ? undefined : sharedRecipient(o.shareGroup, sub.filter);
      const sent: Message[] = [];
      for (const { message: m, recipients } of stored) {
        if (s.terminated) return;
        if (recipients.has(s.clientId) || (group !== undefined && recipients.has(group))) continue;
        if (route.deliverIf !== undefined && !route.deliverIf(m.topic)) continue;
        if (s.bridgeIngress && m.from.type === 'bridge') continue;
        s.out.deliver(m, (m.qos < o.qos ? m.qos : o.qos) as QoS, o.retainAsPublished && m.retain, route.subIds, null, now);
        sent.push(m);
      }
      if (sent.length > 0) {
        await ms.markDelivered(s.clientId, sent);
        if (group !== undefined) await ms.markDelivered(group, sent);
      }
    } catch (err) {
      k.logger.error({ err, filter: sub.filter }, 'message store replay failed');
    }
  }

}
