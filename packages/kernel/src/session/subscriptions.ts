/**
 * A session's subscriptions: the SUBSCRIBE pipeline for one filter (transform hook, special prefixes,
 * limits, ACL, granted QoS), the route table entries, and what is sent because of a subscription
 * (retained messages, stored messages).
 */
import {
  ReasonCode,
  type QoS,
  type RouteEntry,
  type SubscribeAclResult,
  type SubscribeRequest,
  type SubscriptionOptions,
  type SubscriptionSnapshot,
} from '@rmqtt-ts/plugin-api';
import type { Kernel } from '../kernel.js';
import { C } from '../metrics/metrics.js';
import { parseSubscriptionFilter } from '../router/index.js';
import { type Session, SessionSubscription } from './session.js';

/** A route entry as the kernel makes them: the session itself is the target. */
export class KernelRoute implements RouteEntry {
  /** The Subscription Identifier as the list a delivery carries (made once, shared by deliveries). */
  readonly subIds: readonly number[] | undefined;
  constructor(
    readonly clientId: string,
    readonly filter: string,
    readonly options: SubscriptionOptions,
    readonly target: Session,
    /** From the ACL: only topics for which this holds are delivered. */
    readonly deliverIf: ((topic: string) => boolean) | undefined,
  ) {
    this.subIds = options.subscriptionId === undefined ? undefined : Object.freeze([options.subscriptionId]);
  }
}

/** Result of one filter of a SUBSCRIBE. `protocolError` ends the connection (0x82). */
export interface SubscribeOutcome {
  code: number;
  protocolError?: string;
  /** The subscription made, when retained messages are due for it. */
  sendRetained?: SessionSubscription;
  /** A new subscription (for stored-message replay). */
  created?: SessionSubscription;
}

const DENY: SubscribeAclResult = Object.freeze({ allow: false });

export function processSubscription(k: Kernel, s: Session, req: SubscribeRequest): SubscribeOutcome | Promise<SubscribeOutcome> {
  k.metrics.counters[C['client.subscribe']]!++;
  if (k.hooks.has('client.subscribe')) {
    const r = k.hooks.transform('client.subscribe', req, { client: s.info });
    if (r instanceof Promise) return r.then((t) => (t === null ? { code: ReasonCode.UnspecifiedError } : checkAndAdd(k, s, t)));
    if (r === null) return { code: ReasonCode.UnspecifiedError };
    req = r;
  }
  return checkAndAdd(k, s, req);
}

function checkAndAdd(k: Kernel, s: Session, req: SubscribeRequest): SubscribeOutcome | Promise<SubscribeOutcome> {
  const L = s.listener;
  const parsed = parseSubscriptionFilter(req.filter, { limitSubscription: L.limitSubscription, maxTopicLevels: L.maxTopicLevels });
  if (!parsed.ok) {
    k.metrics.counters[C['client.subscribe.error']]!++;
    return { code: ReasonCode.TopicFilterInvalid };
  }
  if (parsed.shareGroup !== undefined && req.options.noLocal) {
    // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error
    return { code: ReasonCode.ProtocolError, protocolError: 'No Local on a shared subscription' };
  }
  if (L.maxSubscriptions > 0 && s.subscriptions.size >= L.maxSubscriptions && !s.subscriptions.has(req.filter)) {
    k.metrics.counters[C['client.subscribe.error']]!++;
    return { code: ReasonCode.QuotaExceeded };
  }
  const options: SubscriptionOptions = {
    qos: req.options.qos,
    noLocal: req.options.noLocal,
    retainAsPublished: req.options.retainAsPublished,
    retainHandling: req.options.retainHandling,
    subscriptionId: req.options.subscriptionId,
    shareGroup: parsed.shareGroup,
    limit: parsed.limit,
  };
  if (!s.superuser && k.hooks.has('client.subscribeCheckAcl')) {
    k.metrics.counters[C['client.subscribe.check.acl']]!++;
    // the ACL sees the filter without $share/g/, $exclusive/, $limit/n/
    const r = k.hooks.decide('client.subscribeCheckAcl', { client: s.info, filter: parsed.filter, options }, undefined, DENY);
    if (r instanceof Promise) return r.then((acl) => grant(k, s, req.filter, parsed.filter, options, acl));
    return grant(k, s, req.filter, parsed.filter, options, r);
  }
  return grant(k, s, req.filter, parsed.filter, options, undefined);
}

function grant(
  k: Kernel,
  s: Session,
  raw: string,
  filter: string,
  requested: SubscriptionOptions,
  acl: SubscribeAclResult | undefined,
): SubscribeOutcome {
  // an asynchronous hook may answer after the session ended: nothing may be added to it then
  if (s.terminated) return { code: ReasonCode.UnspecifiedError };
  if (acl !== undefined && !acl.allow) {
    k.metrics.counters[C['client.subscribe.auth.error']]!++;
    return { code: acl.reasonCode ?? ReasonCode.NotAuthorized };
  }
  // granted = min(requested, max_qos_allowed, ACL cap)
  let qos = Math.min(requested.qos, s.listener.maxQosAllowed, acl?.qos ?? 2) as QoS;
  if (qos < 0) qos = 0;
  if (requested.limit !== undefined && !k.limits.tryAcquire(filter, s.clientId, requested.limit)) {
    k.metrics.counters[C['client.subscribe.error']]!++;
    return { code: ReasonCode.QuotaExceeded };
  }
  const options: SubscriptionOptions = qos === requested.qos ? requested : { ...requested, qos };
  const existed = s.subscriptions.has(raw);
  const sub = addSubscription(k, s, raw, filter, options, acl?.deliverIf);
  const rh = options.retainHandling;
  // retained messages: not for $share [MQTT-4.8.2-?]; Retain Handling 1 only for a new subscription
  const due = options.shareGroup === undefined && (rh === 0 || (rh === 1 && !existed));
  return { code: qos, sendRetained: due ? sub : undefined, created: existed ? undefined : sub };
}

/** Add (or replace) a subscription in the session and the route table. */
export function addSubscription(
  k: Kernel,
  s: Session,
  raw: string,
  filter: string,
  options: SubscriptionOptions,
  deliverIf: ((topic: string) => boolean) | undefined,
): SessionSubscription {
  const prev = s.subscriptions.get(raw);
  if (prev !== undefined) {
    k.ext.router.remove(s.clientId, prev.filter, prev.options.shareGroup);
  } else {
    k.metrics.gauges.subscriptions.inc();
    if (options.shareGroup !== undefined) k.metrics.gauges.subscriptions_shared.inc();
  }
  const route = new KernelRoute(s.clientId, filter, options, s, deliverIf);
  k.ext.router.add(route);
  const sub = new SessionSubscription(raw, route, deliverIf);
  s.setSubscription(raw, sub);
  k.metrics.counters[C['session.subscribed']]!++;
  if (s.persistent) k.journal.record({ op: 'subscribe', clientId: s.clientId, subscription: { rawFilter: raw, options } });
  if (k.hooks.has('session.subscribed')) {
    // the filter without $share/{group}/, $limit/n/ or $exclusive/ (the options carry those)
    void k.hooks.observe('session.subscribed', { client: s.info, subscription: { clientId: s.clientId, filter, options } });
  }
  return sub;
}

/** Remove one subscription by the filter the client used; false if there was none. */
export function removeSubscription(k: Kernel, s: Session, raw: string): boolean {
  const sub = s.subscriptions.get(raw);
  if (sub === undefined) return false;
  s.deleteSubscription(raw);
  k.ext.router.remove(s.clientId, sub.filter, sub.options.shareGroup);
  if (sub.options.limit !== undefined) k.limits.release(sub.filter, s.clientId);
  k.metrics.gauges.subscriptions.dec();
  if (sub.options.shareGroup !== undefined) k.metrics.gauges.subscriptions_shared.dec();
  k.metrics.counters[C['session.unsubscribed']]!++;
  if (s.persistent) k.journal.record({ op: 'unsubscribe', clientId: s.clientId, rawFilter: raw });
  if (k.hooks.has('session.unsubscribed')) void k.hooks.observe('session.unsubscribed', { client: s.info, filter: raw });
  return true;
}

export function removeAllSubscriptions(k: Kernel, s: Session): void {
  for (const sub of s.subscriptions.values()) {
    k.ext.router.remove(s.clientId, sub.filter, sub.options.shareGroup);
    if (sub.options.limit !== undefined) k.limits.release(sub.filter, s.clientId);
    k.metrics.gauges.subscriptions.dec();
    if (sub.options.shareGroup !== undefined) k.metrics.gauges.subscriptions_shared.dec();
  }
  s.clearSubscriptions();
}

/** Subscriptions of a restored session go back into the route table as they were granted. */
export function restoreSubscriptions(k: Kernel, s: Session, subs: readonly SubscriptionSnapshot[]): void {
  for (const sub of subs) {
    const parsed = parseSubscriptionFilter(sub.rawFilter, { limitSubscription: true, maxTopicLevels: 0 });
    if (!parsed.ok) continue;
    if (sub.options.limit !== undefined) k.limits.tryAcquire(parsed.filter, s.clientId, sub.options.limit);
    const route = new KernelRoute(s.clientId, parsed.filter, sub.options, s, undefined);
    k.ext.router.add(route);
    s.setSubscription(sub.rawFilter, new SessionSubscription(sub.rawFilter, route, undefined));
    k.metrics.gauges.subscriptions.inc();
    if (sub.options.shareGroup !== undefined) k.metrics.gauges.subscriptions_shared.inc();
  }
}

/** Put every session's subscriptions into a (new) router, e.g. when a plugin swaps the Router in. */
export function reindexRoutes(k: Kernel): void {
  for (const s of k.sessions.values()) {
    for (const sub of s.subscriptions.values()) k.ext.router.add(sub.route);
  }
}
