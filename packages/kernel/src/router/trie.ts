/**
 * The kernel's default Router: a topic trie with a per-topic match cache.
 *
 * Publishing is the hot path and most brokers see the same few topics over and over between
 * subscription changes, so `match` is first a single Map lookup. A miss walks the trie once and builds
 * the result arrays once; the result is frozen and shared by every later publish to that topic until
 * the next add/remove clears the cache.
 */
import type { RouteEntry, RouteMatch, Router, SharedGroupMatch } from '@rmqtt-ts/plugin-api';

const DOLLAR = 0x24;

const EMPTY_ENTRIES: readonly RouteEntry[] = Object.freeze([]);
const EMPTY_GROUPS: readonly SharedGroupMatch[] = Object.freeze([]);
/** Shared by every topic nobody subscribes to: no allocation and one cached object for all of them. */
const EMPTY_MATCH: RouteMatch = Object.freeze({ direct: EMPTY_ENTRIES, shared: EMPTY_GROUPS });

export interface TopicTrieOptions {
  /** Topics whose match result is kept (0 disables the cache). Default 10 000. */
  readonly cacheSize?: number;
  /**
   * Longer topics are matched but not cached, so that a flood of long random topics cannot pin
   * cacheSize × 64 KiB of keys. Default 1024 characters.
   */
  readonly maxCachedTopicLength?: number;
}

/** One level of the filter space. Wildcard levels live in their own slots, never in `children`. */
class TrieNode {
  readonly parent: TrieNode | undefined;
  /** Key in the parent: the literal level, or `+` / `#` for the wildcard slots. */
  readonly level: string;
  /** Literal child levels. A Map, because levels come from the wire and must never index an object. */
  children: Map<string, TrieNode> | undefined = undefined;
  plus: TrieNode | undefined = undefined;
  hash: TrieNode | undefined = undefined;
  /** The filter that ends at this node (set once the first entry arrives). */
  filter = '';
  /** Non-shared entries by client id. */
  direct: Map<string, RouteEntry> | undefined = undefined;
  /** Shared entries by group, then client id. */
  shared: Map<string, Map<string, RouteEntry>> | undefined = undefined;
  entryCount = 0;
  /** This node's own entries as a RouteMatch; rebuilt lazily after a change here. */
  #result: RouteMatch | undefined = undefined;

  constructor(parent: TrieNode | undefined, level: string) {
    this.parent = parent;
    this.level = level;
  }

  isPrunable(): boolean {
    return this.entryCount === 0 && this.children === undefined && this.plus === undefined && this.hash === undefined;
  }

  invalidate(): void {
    this.#result = undefined;
  }

  /**
   * The entries held here, frozen. Topics that match exactly one filter (the usual case) share this
   * object, so 10 000 cached topics under `sensors/+/temp` cost one result, not 10 000.
   */
  result(): RouteMatch {
    if (this.#result !== undefined) return this.#result;
    const direct = this.direct === undefined ? EMPTY_ENTRIES : Object.freeze(Array.from(this.direct.values()));
    let shared = EMPTY_GROUPS;
    if (this.shared !== undefined) {
      const groups: SharedGroupMatch[] = [];
      for (const [group, members] of this.shared) {
        groups.push(Object.freeze({ group, filter: this.filter, members: Object.freeze(Array.from(members.values())) }));
      }
      shared = Object.freeze(groups);
    }
    this.#result = Object.freeze({ direct, shared });
    return this.#result;
  }
}

export class TopicTrie implements Router {
  #root = new TrieNode(undefined, '');
  #size = 0;
  readonly #cache = new Map<string, RouteMatch>();
  readonly #cacheSize: number;
  readonly #maxCachedTopicLength: number;
  // Scratch space reused by every miss: the walk is synchronous, so one set per trie is enough.
  readonly #stackNodes: TrieNode[] = [];
  readonly #stackDepths: number[] = [];
  readonly #found: TrieNode[] = [];

  constructor(options: TopicTrieOptions = {}) {
    this.#cacheSize = Math.max(0, Math.floor(options.cacheSize ?? 10_000));
    this.#maxCachedTopicLength = Math.max(0, Math.floor(options.maxCachedTopicLength ?? 1024));
  }

  get size(): number {
    return this.#size;
  }

  /** Add or replace (same client, filter and group: the options changed) a route. */
  add(entry: RouteEntry): void {
    let node = this.#root;
    const levels = entry.filter.split('/');
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i]!;
      let next: TrieNode | undefined;
      if (level === '+') {
        next = node.plus ??= new TrieNode(node, level);
      } else if (level === '#') {
        next = node.hash ??= new TrieNode(node, level);
      } else {
        node.children ??= new Map();
        next = node.children.get(level);
        if (next === undefined) {
          next = new TrieNode(node, level);
          node.children.set(level, next);
        }
      }
      node = next;
    }
    node.filter = entry.filter;

    const group = entry.options.shareGroup;
    let byClient: Map<string, RouteEntry>;
    if (group === undefined) {
      byClient = node.direct ??= new Map();
    } else {
      node.shared ??= new Map();
      let members = node.shared.get(group);
      if (members === undefined) {
        members = new Map();
        node.shared.set(group, members);
      }
      byClient = members;
    }
    if (!byClient.has(entry.clientId)) {
      node.entryCount++;
      this.#size++;
    }
    byClient.set(entry.clientId, entry);
    node.invalidate();
    this.#invalidateCache();
  }

  remove(clientId: string, filter: string, group: string | undefined): RouteEntry | undefined {
    const node = this.#find(filter);
    if (node === undefined) return undefined;
    let removed: RouteEntry | undefined;
    if (group === undefined) {
      removed = node.direct?.get(clientId);
      if (removed === undefined) return undefined;
      node.direct!.delete(clientId);
      if (node.direct!.size === 0) node.direct = undefined;
    } else {
      const members = node.shared?.get(group);
      removed = members?.get(clientId);
      if (removed === undefined) return undefined;
      members!.delete(clientId);
      if (members!.size === 0) {
        node.shared!.delete(group);
        if (node.shared!.size === 0) node.shared = undefined;
      }
    }
    node.entryCount--;
    this.#size--;
    node.invalidate();
    this.#prune(node);
    this.#invalidateCache();
    return removed;
  }

  /**
   * Routes for a topic name. The result is frozen and may be shared with other callers and other
   * topics: read it, never change it.
   */
  match(topic: string): RouteMatch {
    const hit = this.#cache.get(topic);
    if (hit !== undefined) return hit;
    return this.#matchAndCache(topic);
  }

  /** Distinct filters with their entry counts; a shared group is reported as `$share/{group}/{filter}`. */
  routes(): Iterable<{ readonly filter: string; readonly count: number }> {
    const out: { filter: string; count: number }[] = [];
    // Explicit stack: a deep filter must not grow the call stack.
    const stack: TrieNode[] = [this.#root];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (node.direct !== undefined) out.push({ filter: node.filter, count: node.direct.size });
      if (node.shared !== undefined) {
        for (const [group, members] of node.shared) out.push({ filter: `$share/${group}/${node.filter}`, count: members.size });
      }
      if (node.children !== undefined) for (const child of node.children.values()) stack.push(child);
      if (node.plus !== undefined) stack.push(node.plus);
      if (node.hash !== undefined) stack.push(node.hash);
    }
    return out;
  }

  /** Drop every route. */
  clear(): void {
    this.#root = new TrieNode(undefined, '');
    this.#size = 0;
    this.#cache.clear();
  }

  #invalidateCache(): void {
    if (this.#cache.size > 0) this.#cache.clear();
  }

  #find(filter: string): TrieNode | undefined {
    let node: TrieNode | undefined = this.#root;
    const levels = filter.split('/');
    for (let i = 0; i < levels.length && node !== undefined; i++) {
      const level = levels[i]!;
      if (level === '+') node = node.plus;
      else if (level === '#') node = node.hash;
      else node = node.children?.get(level);
    }
    return node;
  }

  /** Detach empty nodes bottom-up, so unsubscribed topics leave nothing behind. */
  #prune(start: TrieNode): void {
    let node = start;
    while (node.parent !== undefined && node.isPrunable()) {
      const parent: TrieNode = node.parent;
      if (node.level === '+' && parent.plus === node) parent.plus = undefined;
      else if (node.level === '#' && parent.hash === node) parent.hash = undefined;
      else if (parent.children !== undefined) {
        parent.children.delete(node.level);
        if (parent.children.size === 0) parent.children = undefined;
      }
      node = parent;
    }
  }

  #matchAndCache(topic: string): RouteMatch {
    const result = this.#build(topic);
    if (this.#cacheSize > 0 && topic.length <= this.#maxCachedTopicLength) {
      if (this.#cache.size >= this.#cacheSize) {
        // FIFO eviction: the oldest insertion goes. Cheap, and a hot topic is re-inserted on its next miss.
        const oldest = this.#cache.keys().next();
        if (oldest.done !== true) this.#cache.delete(oldest.value);
      }
      this.#cache.set(topic, result);
    }
    return result;
  }

  #build(topic: string): RouteMatch {
    const found = this.#found;
    this.#collect(topic, found);
    const count = found.length;
    if (count === 0) return EMPTY_MATCH;
    if (count === 1) {
      const only = found[0]!.result();
      found.length = 0;
      return only;
    }
    const direct: RouteEntry[] = [];
    const shared: SharedGroupMatch[] = [];
    for (let i = 0; i < count; i++) {
      const part = found[i]!.result();
      for (let j = 0; j < part.direct.length; j++) direct.push(part.direct[j]!);
      for (let j = 0; j < part.shared.length; j++) shared.push(part.shared[j]!);
    }
    found.length = 0; // do not keep nodes (and through them sessions) alive from the scratch array
    return Object.freeze({
      direct: direct.length === 0 ? EMPTY_ENTRIES : Object.freeze(direct),
      shared: shared.length === 0 ? EMPTY_GROUPS : Object.freeze(shared),
    });
  }

  /**
   * Push every node whose filter matches `topic` and holds entries. Each filter node is reached by
   * exactly one path, so no node is found twice. Iterative: topic depth is client-controlled.
   */
  #collect(topic: string, found: TrieNode[]): void {
    const levels = topic.split('/');
    const n = levels.length;
    // A `$` topic is not matched by a filter starting with `+` or `#` [MQTT-4.7.2-1].
    const dollar = topic.charCodeAt(0) === DOLLAR;
    const nodes = this.#stackNodes;
    const depths = this.#stackDepths;
    nodes.push(this.#root);
    depths.push(0);
    while (nodes.length > 0) {
      const node = nodes.pop()!;
      const depth = depths.pop()!;
      const wildcardsAllowed = depth !== 0 || !dollar;
      // `#` matches the rest of the topic, including nothing at all: `a/#` matches `a` [MQTT-4.7.1-2].
      if (wildcardsAllowed && node.hash !== undefined && node.hash.entryCount > 0) found.push(node.hash);
      if (depth === n) {
        if (node.entryCount > 0) found.push(node);
        continue;
      }
      // `+` matches exactly one level, an empty one included (`/+` matches `/`).
      if (wildcardsAllowed && node.plus !== undefined) {
        nodes.push(node.plus);
        depths.push(depth + 1);
      }
      if (node.children !== undefined) {
        const child = node.children.get(levels[depth]!);
        if (child !== undefined) {
          nodes.push(child);
          depths.push(depth + 1);
        }
      }
    }
  }
}
