/**
 * RMQTT's ACL rules: `[permission, who, action?, topics?]`, read top-down, the first rule that hits
 * decides, and no hit is a denial.
 *
 * - permission: "allow" | "deny"
 * - who: "all", or a table whose every field must match: user, clientid, ipaddr (an address or a CIDR
 *   block, IPv4 or IPv6), protocol (3, 4 or 5), password (allow rules only); `superuser = true` (allow
 *   rules only) makes the clients it lets in superusers, who skip the ACL afterwards.
 * - action: connect | publish | subscribe | pubsub (publish and subscribe) | all (default).
 * - topics: topic filters (a publish hits when its topic matches one; a subscription when its filter is
 *   covered by one) or `{ eq = "…" }` for an exact topic or filter; `%u` and `%c` stand for the client's
 *   username and client id; no topics = every topic.
 *
 * A placeholder stands for a value, never for wildcards or levels: a username or client id holding
 * `/`, `+` or `#` (or none at all, for `%u`) makes an allow rule miss and a deny rule hit, so such names
 * can neither widen an allow nor slip past a deny.
 */
import { BlockList, isIP } from 'node:net';
import { filterCovers, isValidTopicFilter, topicMatches, type ClientInfo, type ConnectInfo } from '@rmqtt-ts/plugin-api';

export type Permission = 'allow' | 'deny';
export type Action = 'connect' | 'publish' | 'subscribe';

interface Who {
  user?: string;
  clientid?: string;
  ipaddr?: BlockList;
  protocol?: number;
  password?: string;
}

interface TopicMatcher {
  /** The rule's text, placeholders included. */
  readonly text: string;
  readonly exact: boolean;
  readonly placeholders: boolean;
}

export interface Rule {
  readonly index: number;
  readonly permission: Permission;
  readonly who: Who | 'all';
  readonly actions: ReadonlySet<Action>;
  /** undefined: every topic. */
  readonly topics: readonly TopicMatcher[] | undefined;
  readonly superuser: boolean;
}

const ACTIONS: Record<string, readonly Action[]> = {
  connect: ['connect'],
  publish: ['publish'],
  subscribe: ['subscribe'],
  pubsub: ['publish', 'subscribe'],
  all: ['connect', 'publish', 'subscribe'],
};

const WHO_KEYS = new Set(['user', 'username', 'clientid', 'ipaddr', 'protocol', 'password', 'superuser']);

class RuleError extends Error {}

function fail(index: number, message: string): never {
  throw new RuleError(`rule ${index + 1}: ${message}`);
}

function parseIpaddr(index: number, value: unknown): BlockList {
  const list = new BlockList();
  const entries = Array.isArray(value) ? value : [value];
  for (const e of entries) {
    if (typeof e !== 'string') fail(index, `ipaddr: expected an address or CIDR block such as "127.0.0.1" or "10.0.0.0/8", got ${JSON.stringify(e)}`);
    const [addr, bits, extra] = e.trim().split('/');
    const family = isIP(addr ?? '');
    if (family === 0 || extra !== undefined) fail(index, `ipaddr: "${e}" is not an address or CIDR block`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) {
      list.addAddress(addr!, type);
      continue;
    }
    const prefix = Number(bits);
    if (!/^\d+$/.test(bits) || prefix > (family === 4 ? 32 : 128)) fail(index, `ipaddr: "${e}" has a bad prefix length`);
    list.addSubnet(addr!, prefix, type);
  }
  return list;
}

function parseWho(index: number, value: unknown, permission: Permission): { who: Who | 'all'; superuser: boolean } {
  if (value === 'all') return { who: 'all', superuser: false };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(index, `who: expected "all" or a table such as { user = "x" }, got ${JSON.stringify(value)}`);
  const t = value as Record<string, unknown>;
  for (const k of Object.keys(t)) if (!WHO_KEYS.has(k)) fail(index, `who: unknown field "${k}" (expected user, clientid, ipaddr, protocol, password, superuser)`);
  const who: Who = {};
  const user = t['user'] ?? t['username'];
  if (user !== undefined) {
    if (typeof user !== 'string') fail(index, 'who.user: expected a string');
    who.user = user;
  }
  if (t['clientid'] !== undefined) {
    if (typeof t['clientid'] !== 'string') fail(index, 'who.clientid: expected a string');
    who.clientid = t['clientid'];
  }
  if (t['ipaddr'] !== undefined) who.ipaddr = parseIpaddr(index, t['ipaddr']);
  if (t['protocol'] !== undefined) {
    if (t['protocol'] !== 3 && t['protocol'] !== 4 && t['protocol'] !== 5) fail(index, `who.protocol: expected 3, 4 or 5, got ${JSON.stringify(t['protocol'])}`);
    who.protocol = t['protocol'];
  }
  if (t['password'] !== undefined) {
    if (typeof t['password'] !== 'string') fail(index, 'who.password: expected a string');
    if (permission !== 'allow') fail(index, 'who.password: only allow rules may name a password');
    who.password = t['password'];
  }
  const superuser = t['superuser'];
  if (superuser !== undefined && typeof superuser !== 'boolean') fail(index, 'who.superuser: expected true or false');
  if (superuser === true && permission !== 'allow') fail(index, 'who.superuser: only allow rules may make superusers');
  return { who, superuser: superuser === true };
}

function parseTopics(index: number, value: unknown): TopicMatcher[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) fail(index, `topics: expected a list such as ["a/#", { eq = "b" }], got ${JSON.stringify(value)}`);
  return value.map((t): TopicMatcher => {
    let text: string;
    let exact = false;
    if (typeof t === 'string') text = t;
    else if (typeof t === 'object' && t !== null && !Array.isArray(t) && typeof (t as { eq?: unknown }).eq === 'string' && Object.keys(t).length === 1) {
      text = (t as { eq: string }).eq;
      exact = true;
    } else fail(index, `topics: expected a topic filter or { eq = "…" }, got ${JSON.stringify(t)}`);
    const placeholders = text.includes('%u') || text.includes('%c');
    // with placeholders the filter is checked once they are filled in
    if (!placeholders && !exact && !isValidTopicFilter(text)) fail(index, `topics: "${text}" is not a topic filter`);
    if (text === '') fail(index, 'topics: an empty topic');
    return { text, exact, placeholders };
  });
}

/** One rule from its TOML form; throws naming the rule and what was expected. */
export function parseRule(index: number, value: unknown): Rule {
  if (!Array.isArray(value) || value.length < 2 || value.length > 4) {
    fail(index, `expected [permission, who, action?, topics?] such as ["allow", "all", "pubsub", ["a/#"]], got ${JSON.stringify(value)}`);
  }
  const [perm, whoValue, actionValue, topicsValue] = value as unknown[];
  if (perm !== 'allow' && perm !== 'deny') fail(index, `permission: expected "allow" or "deny", got ${JSON.stringify(perm)}`);
  const { who, superuser } = parseWho(index, whoValue, perm);
  const action = actionValue ?? 'all';
  if (typeof action !== 'string' || ACTIONS[action] === undefined) {
    fail(index, `action: expected connect, publish, subscribe, pubsub or all, got ${JSON.stringify(actionValue)}`);
  }
  return { index, permission: perm, who, actions: new Set(ACTIONS[action]), topics: parseTopics(index, topicsValue), superuser };
}

export function parseRules(value: unknown): Rule[] {
  if (!Array.isArray(value)) throw new RuleError(`expected a list of rules, got ${JSON.stringify(value)}`);
  return value.map((r, i) => parseRule(i, r));
}

/** The convict format of `rules`: a list RMQTT's way, every rule checked. */
export function rulesFormat(value: unknown): void {
  parseRules(value);
}

// ---- matching ----

function whoMatches(rule: Rule, info: ConnectInfo): boolean {
  const w = rule.who;
  if (w === 'all') return true;
  if (w.user !== undefined && info.username !== w.user) return false;
  if (w.clientid !== undefined && info.clientId !== w.clientid) return false;
  if (w.protocol !== undefined && info.protoVer !== w.protocol) return false;
  if (w.password !== undefined && (info.password === undefined || info.password.toString('utf8') !== w.password)) return false;
  if (w.ipaddr !== undefined) {
    const ip = info.remoteAddr.ip;
    const family = isIP(ip);
    if (family === 0 || !w.ipaddr.check(ip, family === 4 ? 'ipv4' : 'ipv6')) return false;
  }
  return true;
}

/** A value a placeholder may stand for: one plain topic level. */
function plainLevel(v: string | undefined): v is string {
  return v !== undefined && v !== '' && !v.includes('/') && !v.includes('+') && !v.includes('#');
}

/**
 * The matcher's text for this client, or null when a placeholder cannot be filled safely (the value is
 * missing or holds `/`, `+` or `#`).
 */
function resolve(m: TopicMatcher, info: ConnectInfo): string | null {
  if (!m.placeholders) return m.text;
  const needsUser = m.text.includes('%u');
  const needsClient = m.text.includes('%c');
  if (needsUser && !plainLevel(info.username)) return null;
  if (needsClient && !plainLevel(info.clientId)) return null;
  // a value never re-enters the substitution: split on the placeholders and join with the values
  return m.text
    .split(/(%u|%c)/)
    .map((part) => (part === '%u' ? info.username! : part === '%c' ? info.clientId : part))
    .join('');
}

type Hit = 'hit' | 'miss' | 'partial';

/** Does the matcher hit a published topic? */
function hitsTopic(m: TopicMatcher, text: string, topic: string): boolean {
  return m.exact ? text === topic : topicMatches(text, topic);
}

/** Does the matcher cover a subscription filter (hit), share some topics with it (partial), or neither? */
function hitsFilter(m: TopicMatcher, text: string, filter: string): Hit {
  if (m.exact) return text === filter ? 'hit' : 'miss';
  if (filterCovers(text, filter)) return 'hit';
  return filtersOverlap(text, filter) ? 'partial' : 'miss';
}

/** Whether some topic name is matched by both filters. */
export function filtersOverlap(a: string, b: string): boolean {
  const x = a.split('/');
  const y = b.split('/');
  // a filter starting with a wildcard matches no $ topic [MQTT-4.7.2-1]
  const dollarX = x[0]!.startsWith('$');
  const dollarY = y[0]!.startsWith('$');
  if (dollarX && (y[0] === '+' || y[0] === '#')) return false;
  if (dollarY && (x[0] === '+' || x[0] === '#')) return false;
  for (let i = 0; ; i++) {
    const p = x[i];
    const q = y[i];
    if (p === '#' || q === '#') return true;
    if (p === undefined || q === undefined) return p === q;
    if (p !== '+' && q !== '+' && p !== q) return false;
  }
}

export interface ConnectDecision {
  permission: Permission;
  superuser: boolean;
  rule: number;
}

/** What the rules say about one connected client, worked out as it is asked. */
interface ClientRules {
  /** Which rules' `who` match the client. */
  readonly who: readonly boolean[];
  /** Publish verdicts by topic: the same client publishing to the same topic gets the same answer. */
  readonly publish: Map<string, Permission>;
}

/** Publish verdicts kept per client before the cache starts over (a client publishing to ever-new topics). */
const PUBLISH_CACHE_SIZE = 256;

export class AclRules {
  /**
   * Per client, keyed by its CONNECT's ConnectInfo: a client's connect info does not change while it is
   * connected, so which rules name it is worked out once, and a publish to a topic it published to
   * before is one map lookup. New rules (a reload) are a new AclRules, so nothing stale survives.
   */
  readonly #clients = new WeakMap<ConnectInfo, ClientRules>();

  constructor(readonly rules: readonly Rule[]) {}

  #client(info: ConnectInfo): ClientRules {
    let c = this.#clients.get(info);
    if (c === undefined) {
      c = { who: this.rules.map((rule) => whoMatches(rule, info)), publish: new Map() };
      this.#clients.set(info, c);
    }
    return c;
  }

  /** First connect/all rule whose `who` matches; undefined = no hit (a denial). */
  connect(info: ConnectInfo): ConnectDecision | undefined {
    for (const r of this.rules) {
      if (!r.actions.has('connect') || !whoMatches(r, info)) continue;
      return { permission: r.permission, superuser: r.permission === 'allow' && r.superuser, rule: r.index };
    }
    return undefined;
  }

  /** Publish: the first publish rule whose who and topic hit. */
  publish(client: ClientInfo, topic: string): Permission {
    const info = client.connectInfo;
    const c = this.#client(info);
    let p = c.publish.get(topic);
    if (p === undefined) {
      p = this.#publish(c.who, info, topic);
      if (c.publish.size >= PUBLISH_CACHE_SIZE) c.publish.clear();
      c.publish.set(topic, p);
    }
    return p;
  }

  #publish(who: readonly boolean[], info: ConnectInfo, topic: string): Permission {
    for (const r of this.rules) {
      if (!r.actions.has('publish') || !who[r.index]) continue;
      if (r.topics === undefined) return r.permission;
      for (const m of r.topics) {
        const text = resolve(m, info);
        if (text === null) {
          // an unsafe placeholder value: deny rules hit, allow rules miss
          if (r.permission === 'deny') return 'deny';
          continue;
        }
        if (hitsTopic(m, text, topic)) return r.permission;
      }
    }
    return 'deny';
  }

  /**
   * Subscribe: the first rule that covers the filter decides. A deny rule above it that covers only
   * part of the filter (`secret/#` under a subscription to `#`) does not refuse the subscription, but
   * the topics it denies are kept from it: `deliverIf` checks each topic against the rules in order.
   */
  subscribe(client: ClientInfo, filter: string): { permission: Permission; deliverIf?: (topic: string) => boolean } {
    const info = client.connectInfo;
    const who = this.#client(info).who;
    let partialDeny = false;
    for (const r of this.rules) {
      if (!r.actions.has('subscribe') || !who[r.index]) continue;
      let decided = r.topics === undefined;
      if (!decided) {
        for (const m of r.topics!) {
          const text = resolve(m, info);
          if (text === null) {
            if (r.permission === 'deny') return { permission: 'deny' };
            continue;
          }
          const h = hitsFilter(m, text, filter);
          if (h === 'hit') {
            decided = true;
            break;
          }
          if (h === 'partial' && r.permission === 'deny') partialDeny = true;
        }
      }
      if (!decided) continue;
      if (r.permission === 'deny' || !partialDeny) return { permission: r.permission };
      return { permission: 'allow', deliverIf: (topic) => this.#deliverable(info, topic) };
    }
    return { permission: 'deny' };
  }

  /** For a subscription granted beside a deny: may a message on `topic` reach it? */
  #deliverable(info: ConnectInfo, topic: string): boolean {
    const who = this.#client(info).who;
    for (const r of this.rules) {
      if (!r.actions.has('subscribe') || !who[r.index]) continue;
      if (r.topics === undefined) return r.permission === 'allow';
      for (const m of r.topics) {
        const text = resolve(m, info);
        if (text === null) {
          if (r.permission === 'deny') return false;
          continue;
        }
        if (hitsTopic(m, text, topic)) return r.permission === 'allow';
      }
    }
    return false;
  }
}

export { RuleError };
