/**
 * Retained messages in memory: a topic tree, so a wildcard SUBSCRIBE visits only the matching branches.
 * Expired messages are hidden at once and removed by a deadline.
 */
import type { DeadlineHandle, Message, RetainStore, Scheduler } from '@rmqtt-ts/plugin-api';

class Node {
  readonly children = new Map<string, Node>();
  message: Message | undefined;
  deadline: DeadlineHandle | undefined;
  constructor(readonly parent: Node | undefined, readonly level: string) {}
}

export interface RamStoreLimits {
  maxMessages: number;
  maxPayloadSize: number;
  /** ms; 0 = never. */
  ttl: number;
}

/** Told of every change: the message now retained for a topic, or undefined when it went. */
export type RetainListener = (topic: string, message: Message | undefined) => void;

export class RamRetainStore implements RetainStore {
  readonly #root = new Node(undefined, '');
  #count = 0;
  limits: RamStoreLimits;
  readonly #scheduler: Scheduler;
  readonly #now: () => number;
  /** A durable store behind this one writes what it is told here. */
  onChange: RetainListener | undefined;

  constructor(limits: RamStoreLimits, scheduler: Scheduler, now: () => number = Date.now) {
    this.limits = limits;
    this.#scheduler = scheduler;
    this.#now = now;
  }

  #find(topic: string, create: boolean): Node | undefined {
    let n = this.#root;
    for (const level of topic.split('/')) {
      let c = n.children.get(level);
      if (c === undefined) {
        if (!create) return undefined;
        c = new Node(n, level);
        n.children.set(level, c);
      }
      n = c;
    }
    return n;
  }

  set(message: Message): boolean {
    const L = this.limits;
    if (message.payload.length > L.maxPayloadSize) return false;
    const existing = this.#find(message.topic, false);
    const replacing = existing?.message !== undefined && !this.#expired(existing.message);
    if (!replacing && L.maxMessages > 0 && this.#count >= L.maxMessages) return false;
    // the TTL caps the lifetime; an MQTT 5 Message Expiry Interval still applies [MQTT-3.3.2-5]
    let expiresAt = message.properties.messageExpiryInterval !== undefined ? message.expiresAt : 0;
    if (L.ttl > 0) {
      const byTtl = message.createdAt + L.ttl;
      expiresAt = expiresAt === 0 ? byTtl : Math.min(expiresAt, byTtl);
    }
    const stored: Message = expiresAt === message.expiresAt && message.retain ? message : { ...message, retain: true, expiresAt };
    const node = existing ?? this.#find(message.topic, true)!;
    if (node.message === undefined) this.#count++;
    node.message = stored;
    if (node.deadline !== undefined) this.#scheduler.cancel(node.deadline);
    node.deadline = expiresAt === 0 ? undefined : this.#scheduler.at(expiresAt, () => this.#expire(node, stored));
    this.onChange?.(stored.topic, stored);
    return true;
  }

  #expired(m: Message): boolean {
    return m.expiresAt !== 0 && m.expiresAt <= this.#now();
  }

  #expire(node: Node, m: Message): void {
    node.deadline = undefined;
    if (node.message === m) this.#remove(node);
  }

  #remove(node: Node): void {
    if (node.message === undefined) return;
    this.onChange?.(node.message.topic, undefined);
    node.message = undefined;
    this.#count--;
    if (node.deadline !== undefined) this.#scheduler.cancel(node.deadline);
    node.deadline = undefined;
    // prune empty branches
    let n: Node | undefined = node;
    while (n !== undefined && n.parent !== undefined && n.message === undefined && n.children.size === 0) {
      n.parent.children.delete(n.level);
      n = n.parent;
    }
  }

  delete(topic: string): boolean {
    const node = this.#find(topic, false);
    if (node === undefined || node.message === undefined) return false;
    const had = !this.#expired(node.message);
    this.#remove(node);
    return had;
  }

  get(topic: string): Message | undefined {
    const m = this.#find(topic, false)?.message;
    return m === undefined || this.#expired(m) ? undefined : m;
  }

  match(filter: string): Message[] {
    const out: Message[] = [];
    const levels = filter.split('/');
    const now = this.#now();
    // an explicit stack, not recursion: a filter of thousands of `+` levels must not exhaust the call stack
    const nodes: Node[] = [this.#root];
    const depths: number[] = [0];
    while (nodes.length > 0) {
      const node = nodes.pop()!;
      const i = depths.pop()!;
      if (i === levels.length) {
        this.#push(node, out, now);
        continue;
      }
      const level = levels[i]!;
      if (level === '#') {
        // '#' matches the parent level too [MQTT-4.7.1-2]; '$' topics not by a leading wildcard [MQTT-4.7.2-1]
        if (i > 0) this.#push(node, out, now);
        this.#all(node, out, now, i === 0);
      } else if (level === '+') {
        for (const [name, child] of node.children) {
          if (i === 0 && name.startsWith('$')) continue;
          nodes.push(child);
          depths.push(i + 1);
        }
      } else {
        const child = node.children.get(level);
        if (child !== undefined) {
          nodes.push(child);
          depths.push(i + 1);
        }
      }
    }
    return out;
  }

  #all(node: Node, out: Message[], now: number, skipDollar: boolean): void {
    const stack: Node[] = [];
    for (const [name, child] of node.children) if (!(skipDollar && name.startsWith('$'))) stack.push(child);
    while (stack.length > 0) {
      const n = stack.pop()!;
      this.#push(n, out, now);
      for (const c of n.children.values()) stack.push(c);
    }
  }

  #push(node: Node, out: Message[], now: number): void {
    const m = node.message;
    if (m !== undefined && (m.expiresAt === 0 || m.expiresAt > now)) out.push(m);
  }

  count(): number {
    return this.#count;
  }

  close(): void {
    const stack: Node[] = [this.#root];
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (n.deadline !== undefined) this.#scheduler.cancel(n.deadline);
      for (const c of n.children.values()) stack.push(c);
    }
  }
}
