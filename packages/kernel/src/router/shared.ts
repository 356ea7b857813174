/**
 * Choosing the one member of a shared-subscription group that gets a message.
 *
 * Online members are preferred: the choice is made among the online members when there are any, and
 * among all members otherwise (an offline persistent session then queues the message). Every strategy
 * picks "the k-th eligible member" with two passes over the member list, so no array is built per pick.
 */
import type { Message, RouteEntry, SharedGroupMatch, SharedStrategy, SharedSubscriptionPolicy } from '@rmqtt-ts/plugin-api';

/** Counters kept for round_robin before they are all dropped (they only restart a cycle). */
const MAX_COUNTERS = 65_536;
/** Counters wrap here so they stay small integers. */
const COUNTER_WRAP = 0x40000000;
/**
 * Separates the parts of a sticky key. U+0000 cannot occur in an MQTT string [MQTT-1.5.4-2], so
 * (group, filter, publisher) triples cannot collide.
 */
const SEP = '\u0000';

/**
 * FNV-1a 32-bit over UTF-16 code units, then a murmur3 finaliser so that the low bits (used by the
 * modulo) depend on every character. Stable across runs and processes; not cryptographic.
 */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class SharedSelector {
  /** This node's id; `local` would prefer members on it (see `pick`). */
  readonly nodeId: number;
  #strategy: SharedStrategy;
  #stickyCacheSize: number;
  /** round_robin / local / sticky first assignment: group → filter → counter. */
  readonly #counters = new Map<string, Map<string, number>>();
  #counterCount = 0;
  /** round_robin_per_group: group → counter, shared by every filter of the group. */
  readonly #groupCounters = new Map<string, number>();
  /** sticky: `group SEP filter SEP publisher` → binding, oldest first (see #pickSticky). */
  readonly #sticky = new Map<string, StickyBinding>();
  /** Bumped on every (re)insertion into #sticky. */
  #stickyTick = 0;

  constructor(policy: SharedSubscriptionPolicy, nodeId: number) {
    this.nodeId = nodeId;
    this.#strategy = policy.strategy;
    this.#stickyCacheSize = normaliseCacheSize(policy.stickyCacheSize);
  }

  get strategy(): SharedStrategy {
    return this.#strategy;
  }

  setPolicy(policy: SharedSubscriptionPolicy): void {
    this.#strategy = policy.strategy;
    this.#stickyCacheSize = normaliseCacheSize(policy.stickyCacheSize);
    if (this.#strategy !== 'sticky') this.#sticky.clear();
    else this.#trimSticky();
  }

  /**
   * The member that gets `message`, or undefined for an empty group. `isOnline` is called for members
   * (up to twice each); pass one long-lived function, not a new closure per publish.
   *
   * `local` prefers members on this node. The default router only holds this node's sessions, so every
   * member is local and `local` behaves as `round_robin`; a cluster router that returns remote members
   * brings its own selection.
   */
  pick(group: SharedGroupMatch, message: Message, isOnline: (entry: RouteEntry) => boolean): RouteEntry | undefined {
    const members = group.members;
    const n = members.length;
    if (n === 0) return undefined;
    const strategy = this.#strategy;
    // sticky must record even a lone member, so that it is kept when others join.
    if (n === 1 && strategy !== 'sticky') return members[0];

    let online = 0;
    for (let i = 0; i < n; i++) if (isOnline(members[i]!)) online++;
    const pool = online === 0 ? n : online;
    const onlineOnly = online !== 0 && online !== n;

    let k: number;
    switch (strategy) {
      case 'random':
        k = Math.floor(Math.random() * pool);
        break;
      case 'round_robin_per_group':
        k = this.#nextGroupCounter(group.group) % pool;
        break;
      case 'hash_clientid':
        // Over the eligible list, so the choice is stable while the set of online members is.
        k = hashString(message.from.clientId) % pool;
        break;
      case 'hash_topic':
        k = hashString(message.topic) % pool;
        break;
      case 'sticky':
        return this.#pickSticky(group, message.from.clientId, pool, onlineOnly, online === 0, isOnline);
      case 'local':
      case 'round_robin':
      default:
        k = this.#nextCounter(group.group, group.filter) % pool;
        break;
    }
    return nth(members, k, onlineOnly, isOnline);
  }

  #pickSticky(
    group: SharedGroupMatch,
    publisher: string,
    pool: number,
    onlineOnly: boolean,
    noneOnline: boolean,
    isOnline: (entry: RouteEntry) => boolean,
  ): RouteEntry | undefined {
    const members = group.members;
    const key = group.group + SEP + group.filter + SEP + publisher;
    const binding = this.#sticky.get(key);
    if (binding !== undefined) {
      for (let i = 0; i < members.length; i++) {
        const member = members[i]!;
        if (member.clientId !== binding.member) continue;
        // Kept while it is a member and eligible; an offline member gives way while others are online.
        if (noneOnline || isOnline(member)) {
          // Approximate LRU: a binding moves to the young end only once it has aged past half the
          // cache, so a hot publisher costs one Map lookup instead of a delete and an insert each time.
          if (this.#stickyTick - binding.tick > this.#stickyCacheSize >>> 1) {
            this.#sticky.delete(key);
            binding.tick = ++this.#stickyTick;
            this.#sticky.set(key, binding);
          }
          return member;
        }
        break;
      }
      this.#sticky.delete(key);
    }
    // A new binding: round-robin over the eligible members spreads publishers evenly.
    const chosen = nth(members, this.#nextCounter(group.group, group.filter) % pool, onlineOnly, isOnline);
    if (chosen !== undefined) {
      this.#sticky.set(key, new StickyBinding(chosen.clientId, ++this.#stickyTick));
      this.#trimSticky();
    }
    return chosen;
  }

  #nextCounter(group: string, filter: string): number {
    let byFilter = this.#counters.get(group);
    if (byFilter === undefined) {
      byFilter = new Map();
      this.#counters.set(group, byFilter);
    }
    const current = byFilter.get(filter);
    if (current === undefined) {
      // Groups and filters come and go; rather than track removals, forget all counters now and then.
      if (this.#counterCount >= MAX_COUNTERS) {
        this.#counters.clear();
        this.#counterCount = 0;
        this.#counters.set(group, byFilter);
        byFilter.clear();
      }
      this.#counterCount++;
      byFilter.set(filter, 1);
      return 0;
    }
    byFilter.set(filter, (current + 1) % COUNTER_WRAP);
    return current;
  }

  #nextGroupCounter(group: string): number {
    const current = this.#groupCounters.get(group);
    if (current === undefined) {
      if (this.#groupCounters.size >= MAX_COUNTERS) this.#groupCounters.clear();
      this.#groupCounters.set(group, 1);
      return 0;
    }
    this.#groupCounters.set(group, (current + 1) % COUNTER_WRAP);
    return current;
  }

  #trimSticky(): void {
    while (this.#sticky.size > this.#stickyCacheSize) {
      const oldest = this.#sticky.keys().next();
      if (oldest.done === true) break;
      this.#sticky.delete(oldest.value);
    }
  }
}

class StickyBinding {
  readonly member: string;
  tick: number;

  constructor(member: string, tick: number) {
    this.member = member;
    this.tick = tick;
  }
}

/** The k-th member, counting only online members when `onlineOnly`. */
function nth(
  members: readonly RouteEntry[],
  k: number,
  onlineOnly: boolean,
  isOnline: (entry: RouteEntry) => boolean,
): RouteEntry | undefined {
  if (!onlineOnly) return members[k];
  for (let i = 0; i < members.length; i++) {
    const member = members[i]!;
    if (isOnline(member)) {
      if (k === 0) return member;
      k--;
    }
  }
  // Only reached if isOnline changed its answer between the two passes.
  return members[0];
}

function normaliseCacheSize(size: number): number {
  return Number.isFinite(size) && size >= 1 ? Math.floor(size) : 1;
}
