import { describe, expect, it } from 'vitest';
import type { Message, RouteEntry, SharedGroupMatch, SharedStrategy } from '@rmqtt-ts/plugin-api';
import { SharedSelector, hashString } from './shared.js';

function member(clientId: string): RouteEntry {
  const options = { qos: 1 as const, noLocal: false, retainAsPublished: false, retainHandling: 0 as const, subscriptionId: undefined, shareGroup: 'g', limit: undefined };
  return { clientId, filter: 'job/+', options, target: undefined };
}

function groupOf(ids: readonly string[], group = 'g', filter = 'job/+'): SharedGroupMatch {
  return { group, filter, members: ids.map(member) };
}

function message(topic: string, publisher = 'pub'): Message {
  return {
    id: 1,
    topic,
    payload: Buffer.alloc(0),
    qos: 1,
    retain: false,
    properties: {},
    from: { type: 'custom', node: 1, clientId: publisher, username: undefined, ip: undefined },
    createdAt: 0,
    expiresAt: 0,
  };
}

const allOnline = (_entry: RouteEntry): boolean => true;

function selector(strategy: SharedStrategy, stickyCacheSize = 100): SharedSelector {
  return new SharedSelector({ strategy, stickyCacheSize }, 1);
}

/** How many picks each member got over `count` messages. */
function tally(sel: SharedSelector, group: SharedGroupMatch, count: number, msg: (i: number) => Message, isOnline = allOnline): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const chosen = sel.pick(group, msg(i), isOnline)!.clientId;
    counts.set(chosen, (counts.get(chosen) ?? 0) + 1);
  }
  return counts;
}

describe('SharedSelector', () => {
  it('returns undefined for an empty group and the only member of a group of one', () => {
    for (const strategy of ['random', 'round_robin', 'round_robin_per_group', 'sticky', 'hash_clientid', 'hash_topic', 'local'] as const) {
      const sel = selector(strategy);
      expect(sel.pick(groupOf([]), message('job/1'), allOnline)).toBeUndefined();
      expect(sel.pick(groupOf(['a']), message('job/1'), allOnline)?.clientId).toBe('a');
    }
  });

  it('round_robin cycles evenly through the members', () => {
    const sel = selector('round_robin');
    const group = groupOf(['a', 'b', 'c']);
    const order = Array.from({ length: 6 }, () => sel.pick(group, message('job/1'), allOnline)!.clientId);
    expect(order).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('round_robin keeps one counter per (group, filter)', () => {
    const sel = selector('round_robin');
    const g1 = groupOf(['a', 'b'], 'g', 'x');
    const g2 = groupOf(['a', 'b'], 'g', 'y');
    expect(sel.pick(g1, message('x'), allOnline)!.clientId).toBe('a');
    expect(sel.pick(g2, message('y'), allOnline)!.clientId).toBe('a');
    expect(sel.pick(g1, message('x'), allOnline)!.clientId).toBe('b');
  });

  it('round_robin_per_group shares one counter among the filters of a group', () => {
    const sel = selector('round_robin_per_group');
    const g1 = groupOf(['a', 'b'], 'g', 'x');
    const g2 = groupOf(['a', 'b'], 'g', 'y');
    const other = groupOf(['a', 'b'], 'h', 'x');
    expect(sel.pick(g1, message('x'), allOnline)!.clientId).toBe('a');
    expect(sel.pick(g2, message('y'), allOnline)!.clientId).toBe('b');
    expect(sel.pick(other, message('x'), allOnline)!.clientId).toBe('a');
    expect(sel.pick(g1, message('x'), allOnline)!.clientId).toBe('a');
  });

  it('local behaves as round_robin on a single node', () => {
    const sel = selector('local');
    const group = groupOf(['a', 'b', 'c']);
    const counts = tally(sel, group, 300, () => message('job/1'));
    expect([...counts.values()]).toEqual([100, 100, 100]);
  });

  it('random uses every member', () => {
    const counts = tally(selector('random'), groupOf(['a', 'b', 'c', 'd']), 2000, () => message('job/1'));
    expect(counts.size).toBe(4);
    for (const n of counts.values()) expect(n).toBeGreaterThan(350);
  });

  it('hash_clientid is stable per publisher and spreads publishers', () => {
    const sel = selector('hash_clientid');
    const group = groupOf(['a', 'b', 'c', 'd']);
    for (let p = 0; p < 20; p++) {
      const first = sel.pick(group, message('job/1', `dev-${p}`), allOnline);
      for (let i = 0; i < 5; i++) expect(sel.pick(group, message(`job/${i}`, `dev-${p}`), allOnline)).toBe(first);
    }
    const counts = tally(sel, group, 4000, (i) => message('job/1', `dev-${i}`));
    expect(counts.size).toBe(4);
    for (const n of counts.values()) expect(n).toBeGreaterThan(800);
  });

  it('hash_topic is stable per topic and spreads topics', () => {
    const sel = selector('hash_topic');
    const group = groupOf(['a', 'b', 'c']);
    const first = sel.pick(group, message('job/42', 'p1'), allOnline);
    expect(sel.pick(group, message('job/42', 'p2'), allOnline)).toBe(first);
    const counts = tally(sel, group, 3000, (i) => message(`job/${i}`));
    expect(counts.size).toBe(3);
    for (const n of counts.values()) expect(n).toBeGreaterThan(800);
  });

  it('hashes are stable numbers', () => {
    expect(hashString('')).toBe(hashString(''));
    expect(hashString('device-1')).toBe(hashString('device-1'));
    expect(hashString('device-1')).not.toBe(hashString('device-2'));
    expect(Number.isInteger(hashString('x')) && hashString('x') >= 0).toBe(true);
  });

  it('sticky keeps a publisher on its member until the member leaves', () => {
    const sel = selector('sticky');
    let group = groupOf(['a', 'b', 'c']);
    const first = sel.pick(group, message('job/1', 'p1'), allOnline)!.clientId;
    for (let i = 0; i < 10; i++) expect(sel.pick(group, message(`job/${i}`, 'p1'), allOnline)!.clientId).toBe(first);
    // Other publishers are spread over the members.
    const others = new Set(['p2', 'p3', 'p4'].map((p) => sel.pick(group, message('job/1', p), allOnline)!.clientId));
    expect(others.size).toBeGreaterThan(1);
    // A member joining does not move it; the member leaving does, and the new one sticks.
    group = groupOf(['a', 'b', 'c', 'd']);
    expect(sel.pick(group, message('job/1', 'p1'), allOnline)!.clientId).toBe(first);
    group = groupOf(['a', 'b', 'c', 'd'].filter((id) => id !== first));
    const second = sel.pick(group, message('job/1', 'p1'), allOnline)!.clientId;
    expect(second).not.toBe(first);
    for (let i = 0; i < 5; i++) expect(sel.pick(group, message('job/1', 'p1'), allOnline)!.clientId).toBe(second);
  });

  it('sticky binds a lone member so that it is kept when others join', () => {
    const sel = selector('sticky');
    expect(sel.pick(groupOf(['z']), message('job/1', 'p'), allOnline)!.clientId).toBe('z');
    expect(sel.pick(groupOf(['a', 'b', 'z']), message('job/1', 'p'), allOnline)!.clientId).toBe('z');
  });

  it('sticky forgets the least recently used binding beyond its cache size', () => {
    const sel = selector('sticky', 2);
    const group = groupOf(['a', 'b']);
    const p1 = sel.pick(group, message('t', 'p1'), allOnline)!.clientId; // counter 0 → a
    sel.pick(group, message('t', 'p2'), allOnline); // → b
    sel.pick(group, message('t', 'p3'), allOnline); // → a, evicts p1
    const again = sel.pick(group, message('t', 'p1'), allOnline)!.clientId; // new binding: counter 3 → b
    expect(p1).toBe('a');
    expect(again).toBe('b');
  });

  it('sticky keeps a binding in use while newer publishers come and go', () => {
    const sel = selector('sticky', 4);
    const group = groupOf(['a', 'b', 'c', 'd', 'e']);
    const first = sel.pick(group, message('t', 'hot'), allOnline)!.clientId;
    for (let i = 0; i < 40; i++) {
      sel.pick(group, message('t', `cold-${i}`), allOnline);
      expect(sel.pick(group, message('t', 'hot'), allOnline)!.clientId).toBe(first);
    }
  });

  describe('online preference', () => {
    const online = new Set(['b', 'd']);
    const isOnline = (e: RouteEntry): boolean => online.has(e.clientId);

    for (const strategy of ['random', 'round_robin', 'round_robin_per_group', 'sticky', 'hash_clientid', 'hash_topic', 'local'] as const) {
      it(`${strategy} picks only online members while there are any`, () => {
        const counts = tally(selector(strategy), groupOf(['a', 'b', 'c', 'd']), 400, (i) => message(`job/${i}`, `p${i % 37}`), isOnline);
        expect([...counts.keys()].every((id) => online.has(id))).toBe(true);
      });

      it(`${strategy} falls back to offline members when none is online`, () => {
        const chosen = selector(strategy).pick(groupOf(['a', 'c']), message('job/1'), isOnline);
        expect(['a', 'c']).toContain(chosen?.clientId);
      });
    }

    it('round_robin alternates evenly over the online members', () => {
      const sel = selector('round_robin');
      const order = Array.from({ length: 4 }, () => sel.pick(groupOf(['a', 'b', 'c', 'd']), message('t'), isOnline)!.clientId);
      expect(order).toEqual(['b', 'd', 'b', 'd']);
    });

    it('hash_clientid stays stable while offline members exist', () => {
      const sel = selector('hash_clientid');
      const group = groupOf(['a', 'b', 'c', 'd']);
      for (let p = 0; p < 10; p++) {
        const first = sel.pick(group, message('t', `dev-${p}`), isOnline);
        for (let i = 0; i < 3; i++) expect(sel.pick(group, message('t', `dev-${p}`), isOnline)).toBe(first);
      }
    });

    it('sticky moves off a member that went offline while others are online', () => {
      const sel = selector('sticky');
      const group = groupOf(['a', 'b']);
      const up = new Set(['a', 'b']);
      const isUp = (e: RouteEntry): boolean => up.has(e.clientId);
      expect(sel.pick(group, message('t', 'p'), isUp)!.clientId).toBe('a');
      up.delete('a');
      expect(sel.pick(group, message('t', 'p'), isUp)!.clientId).toBe('b');
      up.add('a');
      expect(sel.pick(group, message('t', 'p'), isUp)!.clientId).toBe('b');
    });
  });

  it('setPolicy switches strategy', () => {
    const sel = selector('round_robin');
    const group = groupOf(['a', 'b', 'c']);
    sel.setPolicy({ strategy: 'hash_topic', stickyCacheSize: 10 });
    expect(sel.strategy).toBe('hash_topic');
    const first = sel.pick(group, message('job/7'), allOnline);
    expect(sel.pick(group, message('job/7'), allOnline)).toBe(first);
  });
});
