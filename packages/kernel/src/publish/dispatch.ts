/**
 * Routing one message to this node's subscribers. Overlapping subscriptions of one client give one
 * copy at the highest granted QoS with every matching Subscription Identifier [MQTT-3.3.4-2, -3];
 * No Local matches are removed before merging; each shared group gets one copy. A bridged message is not
 * delivered to an ingress bridge's client (bridge origin, see @rmqtt-ts/plugin-api). The PUBLISH bytes are
 * encoded once per pass (EncodeCache) and shared.
 */
import type { Message, QoS, RouteEntry } from '@rmqtt-ts/plugin-api';
import { EncodeCache } from '../delivery/encode-cache.js';
import type { Kernel } from '../kernel.js';
import type { Session } from '../session/session.js';
import type { KernelRoute } from '../session/subscriptions.js';

function isOnline(e: RouteEntry): boolean {
  return (e.target as Session).conn !== null;
}

/** For a bridged message: a shared group prefers online members that are not ingress bridge clients. */
function isOnlineNotBridgeIngress(e: RouteEntry): boolean {
  const s = e.target as Session;
  return s.conn !== null && !s.bridgeIngress;
}

/** Origins whose messages No Local applies to: those published under a client id. */
function noLocalApplies(msg: Message): boolean {
  const t = msg.from.type;
  return t === 'custom' || t === 'lastwill' || t === 'bridge';
}

/** How message storage names a shared-subscription group among a message's recipients. */
export function sharedRecipient(group: string, filter: string): string {
  return `$share/${group}/${filter}`;
}

export class Dispatcher {
  readonly #k: Kernel;
  #seq = 0;
  #depth = 0;
  /** Reused between passes; a nested pass (a hook publishing synchronously) gets its own. */
  readonly #scratch: Session[] = [];

  constructor(kernel: Kernel) {
    this.#k = kernel;
  }

  /**
   * Deliver to local subscribers; returns how many sessions got the message. With `recipients`, the
   * client id of each session that got it, and `$share/{group}/{filter}` of each shared group, are
   * added (for message storage).
   */
  dispatch(msg: Message, now: number, recipients?: string[]): number {
    const match = this.#k.ext.router.match(msg.topic);
    const direct = match.direct;
    const shared = match.shared;
    if (direct.length === 0 && shared.length === 0) return 0;
    const cache = new EncodeCache(msg, now);
    const publisher = noLocalApplies(msg) ? msg.from.clientId : undefined;
    const bridged = msg.from.type === 'bridge';
    let n = 0;
    if (direct.length === 1) {
      const e = direct[0] as KernelRoute;
      if (this.#accepts(e, msg, publisher, bridged)) {
        const o = e.options;
        e.target.out.deliver(msg, (msg.qos < o.qos ? msg.qos : o.qos) as QoS, o.retainAsPublished && msg.retain, e.subIds, cache, now);
        recipients?.push(e.clientId);
        n++;
      }
    } else if (direct.length > 1) {
      n += this.#dispatchMerged(direct, msg, publisher, bridged, cache, now, recipients);
    }
    for (let i = 0; i < shared.length; i++) {
      const g = shared[i]!;
      const e = this.#k.selector.pick(g, msg, bridged ? isOnlineNotBridgeIngress : isOnline) as KernelRoute | undefined;
      if (e === undefined || e.target.terminated || (e.deliverIf !== undefined && !e.deliverIf(msg.topic)) || (bridged && e.target.bridgeIngress)) continue;
      const o = e.options;
      e.target.out.deliver(msg, (msg.qos < o.qos ? msg.qos : o.qos) as QoS, o.retainAsPublished && msg.retain, e.subIds, cache, now);
      recipients?.push(e.clientId, sharedRecipient(g.group, g.filter));
      n++;
    }
    return n;
  }

  #accepts(e: KernelRoute, msg: Message, publisher: string | undefined, bridged: boolean): boolean {
    // [MQTT-3.8.3-3] No Local: not back to the publishing client
    if (e.options.noLocal && publisher === e.clientId) return false;
    if (e.deliverIf !== undefined && !e.deliverIf(msg.topic)) return false;
    // bridge origin: a bridged message never goes back out through an ingress bridge's client
    if (bridged && e.target.bridgeIngress) return false;
    return !e.target.terminated;
  }

  #dispatchMerged(direct: readonly RouteEntry[], msg: Message, publisher: string | undefined, bridged: boolean, cache: EncodeCache, now: number, recipients: string[] | undefined): number {
    const seq = ++this.#seq;
    const list = this.#depth === 0 ? this.#scratch : [];
    this.#depth++;
    try {
      list.length = 0;
      for (let i = 0; i < direct.length; i++) {
        const e = direct[i] as KernelRoute;
        if (!this.#accepts(e, msg, publisher, bridged)) continue;
        const s = e.target;
        const o = e.options;
        const q = (msg.qos < o.qos ? msg.qos : o.qos) as QoS;
        const r = o.retainAsPublished && msg.retain;
        const sid = o.subscriptionId;
        if (s.routeMark !== seq) {
          s.routeMark = seq;
          s.routeQos = q;
          s.routeRetain = r;
          s.routeSubIds = sid === undefined ? undefined : [sid];
          list.push(s);
        } else {
          if (q > s.routeQos) s.routeQos = q;
          if (r) s.routeRetain = true;
          if (sid !== undefined) (s.routeSubIds ??= []).push(sid);
        }
      }
      for (let i = 0; i < list.length; i++) {
        const s = list[i]!;
        s.out.deliver(msg, s.routeQos, s.routeRetain, s.routeSubIds, cache, now);
        recipients?.push(s.clientId);
      }
      const n = list.length;
      list.length = 0;
      return n;
    } finally {
      this.#depth--;
    }
  }
}
