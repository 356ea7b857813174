import { describe, expect, it } from 'vitest';
import { topicMatches, type RouteEntry, type RouteMatch } from '@rmqtt-ts/plugin-api';
import { TopicTrie } from './trie.js';

function entry(clientId: string, filter: string, shareGroup?: string, qos: 0 | 1 | 2 = 0): RouteEntry {
  const options = { qos, noLocal: false, retainAsPublished: false, retainHandling: 0 as const, subscriptionId: undefined, shareGroup, limit: undefined };
  return { clientId, filter, options, target: undefined };
}

/** Deterministic PRNG (mulberry32), so a failing property test replays. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return function next(): number {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `client filter` of each direct entry, sorted. */
function directOf(match: RouteMatch): string[] {
  return match.direct.map((e) => `${e.clientId} ${e.filter}`).sort();
}

function sharedOf(match: RouteMatch): string[] {
  return match.shared
    .map((g) => `${g.group} ${g.filter} [${g.members.map((m) => m.clientId).sort().join(',')}]`)
    .sort();
}

function matchesOne(filter: string, topic: string): boolean {
  const trie = new TopicTrie();
  trie.add(entry('c', filter));
  return trie.match(topic).direct.length === 1;
}

describe('TopicTrie matching', () => {
  // Pairs from MQTT 5.0 section 4.7 and the edges around them: [filter, topic, matches].
  const table: [string, string, boolean][] = [
    ['sport/tennis/player1/#', 'sport/tennis/player1', true],
    ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
    ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true],
    ['sport/tennis/player1/#', 'sport/tennis/player2', false],
    ['sport/#', 'sport', true],
    ['#', 'sport/tennis', true],
    ['#', '/', true],
    ['sport/tennis/+', 'sport/tennis/player1', true],
    ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
    ['sport/+', 'sport', false],
    ['sport/+', 'sport/', true],
    ['+/+', '/finance', true],
    ['/+', '/finance', true],
    ['+', '/finance', false],
    ['+/tennis/#', 'sport/tennis/player1', true],
    ['+/tennis/#', 'sport/tennis', true],
    ['+/#', 'a', true],
    ['a//b', 'a//b', true],
    ['a/+/b', 'a//b', true],
    ['a/b', 'a//b', false],
    ['/a', '/a', true],
    ['/a', 'a', false],
    ['+', '', true],
    ['a/b/c', 'a/b', false],
    ['a/b', 'a/b/c', false],
    ['ACCOUNTS', 'Accounts', false],
  ];
  for (const [filter, topic, expected] of table) {
    it(`${filter} ${expected ? 'matches' : 'does not match'} "${topic}"`, () => {
      expect(topicMatches(filter, topic)).toBe(expected); // the oracle agrees with the table
      expect(matchesOne(filter, topic)).toBe(expected);
    });
  }

  it('$ topics are not matched by a filter starting with # or + [MQTT-4.7.2-1]', () => {
    expect(matchesOne('#', '$SYS/broker/clients')).toBe(false);
    expect(matchesOne('+/monitor/Clients', '$SYS/monitor/Clients')).toBe(false);
    expect(matchesOne('+', '$SYS')).toBe(false);
    expect(matchesOne('$SYS/#', '$SYS/monitor/Clients')).toBe(true);
    expect(matchesOne('$SYS/monitor/+', '$SYS/monitor/Clients')).toBe(true);
    expect(matchesOne('$SYS/#', '$SYS')).toBe(true);
    expect(matchesOne('a/+', 'a/$b')).toBe(true); // only the first level is special
  });

  it('lists a client once per overlapping filter', () => {
    const trie = new TopicTrie();
    trie.add(entry('c1', 'a/b'));
    trie.add(entry('c1', 'a/+'));
    trie.add(entry('c1', 'a/#'));
    trie.add(entry('c2', '#'));
    expect(directOf(trie.match('a/b'))).toEqual(['c1 a/#', 'c1 a/+', 'c1 a/b', 'c2 #']);
  });

  it('groups shared entries per (group, filter), apart from direct ones', () => {
    const trie = new TopicTrie();
    trie.add(entry('w1', 'job/+', 'g1'));
    trie.add(entry('w2', 'job/+', 'g1'));
    trie.add(entry('w3', 'job/+', 'g2'));
    trie.add(entry('w1', 'job/#', 'g1'));
    trie.add(entry('d', 'job/+'));
    const m = trie.match('job/1');
    expect(directOf(m)).toEqual(['d job/+']);
    expect(sharedOf(m)).toEqual(['g1 job/# [w1]', 'g1 job/+ [w1,w2]', 'g2 job/+ [w3]']);
  });

  it('replaces a client entry on the same filter and group', () => {
    const trie = new TopicTrie();
    trie.add(entry('c', 'a', undefined, 0));
    trie.add(entry('c', 'a', undefined, 2));
    trie.add(entry('c', 'a', 'g', 1));
    trie.add(entry('c', 'a', 'g', 2));
    expect(trie.size).toBe(2);
    const m = trie.match('a');
    expect(m.direct.map((e) => e.options.qos)).toEqual([2]);
    expect(m.shared[0]!.members.map((e) => e.options.qos)).toEqual([2]);
  });

  it('agrees with topicMatches over random filters, topics and removals', () => {
    const rand = prng(0x5eed);
    const words = ['a', 'b', '', '$s', 'c'];
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const randomFilter = (): string => {
      const n = 1 + Math.floor(rand() * 4);
      const levels: string[] = [];
      for (let i = 0; i < n; i++) {
        const r = rand();
        if (i === n - 1 && r < 0.15) levels.push('#');
        else levels.push(r < 0.4 ? '+' : pick(words));
      }
      return levels.join('/');
    };
    const randomTopic = (): string => {
      const n = 1 + Math.floor(rand() * 4);
      const levels: string[] = [];
      for (let i = 0; i < n; i++) levels.push(pick(words));
      return levels.join('/');
    };
    const trie = new TopicTrie({ cacheSize: 16 });
    const all = new Map<string, RouteEntry>();
    const key = (e: RouteEntry): string => `${e.clientId} ${e.filter} ${e.options.shareGroup ?? ''}`;
    const topics = Array.from({ length: 60 }, randomTopic);
    let nonEmpty = 0;
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 10; i++) {
        const e = entry(`c${Math.floor(rand() * 8)}`, randomFilter(), rand() < 0.25 ? pick(['g', 'h']) : undefined);
        trie.add(e);
        all.set(key(e), e);
      }
      for (const e of [...all.values()].filter(() => rand() < 0.1)) {
        expect(trie.remove(e.clientId, e.filter, e.options.shareGroup)).toBe(e);
        all.delete(key(e));
      }
      expect(trie.size).toBe(all.size);
      for (const topic of topics) {
        const expected = [...all.values()].filter((e) => topicMatches(e.filter, topic));
        if (expected.length > 0) nonEmpty++;
        const m = trie.match(topic);
        expect(m.direct.map(key).sort()).toEqual(expected.filter((e) => e.options.shareGroup === undefined).map(key).sort());
        const shared = m.shared.flatMap((g) => g.members.map((e) => `${key(e)} in ${g.group} ${g.filter}`)).sort();
        const expectedShared = expected
          .filter((e) => e.options.shareGroup !== undefined)
          .map((e) => `${key(e)} in ${e.options.shareGroup} ${e.filter}`)
          .sort();
        expect(shared).toEqual(expectedShared);
        expect(new Set(m.shared.map((g) => `${g.group} ${g.filter}`)).size).toBe(m.shared.length);
      }
    }
    expect(nonEmpty).toBeGreaterThan(1000); // the comparison is not vacuous
  });
});

describe('TopicTrie cache', () => {
  it('returns the same frozen result for a repeated topic', () => {
    const trie = new TopicTrie();
    trie.add(entry('c1', 'a/+'));
    trie.add(entry('c2', 'a/b'));
    const first = trie.match('a/b');
    expect(trie.match('a/b')).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(first.direct)).toBe(true);
    expect(Object.isFrozen(first.shared)).toBe(true);
  });

  it('a cached topic sees a new subscriber at once', () => {
    const trie = new TopicTrie();
    trie.add(entry('c1', 'a/b'));
    expect(directOf(trie.match('a/b'))).toEqual(['c1 a/b']);
    trie.add(entry('c2', 'a/#'));
    expect(directOf(trie.match('a/b'))).toEqual(['c1 a/b', 'c2 a/#']);
    trie.add(entry('c3', 'a/b', 'g'));
    expect(sharedOf(trie.match('a/b'))).toEqual(['g a/b [c3]']);
  });

  it('a cached topic loses a removed subscriber at once', () => {
    const trie = new TopicTrie();
    trie.add(entry('c1', 'a/b'));
    trie.add(entry('c2', '+/b'));
    expect(directOf(trie.match('a/b'))).toEqual(['c1 a/b', 'c2 +/b']);
    trie.remove('c2', '+/b', undefined);
    expect(directOf(trie.match('a/b'))).toEqual(['c1 a/b']);
    trie.remove('c1', 'a/b', undefined);
    expect(trie.match('a/b').direct).toHaveLength(0);
  });

  it('keeps matching correctly past its bound', () => {
    const trie = new TopicTrie({ cacheSize: 4 });
    trie.add(entry('c', 't/+'));
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 20; i++) expect(directOf(trie.match(`t/${i}`))).toEqual(['c t/+']);
    }
    expect(trie.match('u/1').direct).toHaveLength(0);
  });

  it('works with the cache disabled and with topics too long to cache', () => {
    const off = new TopicTrie({ cacheSize: 0 });
    off.add(entry('c', '#'));
    expect(off.match('x').direct).toHaveLength(1);
    const short = new TopicTrie({ maxCachedTopicLength: 3 });
    short.add(entry('c', '#'));
    expect(short.match('long/topic').direct).toHaveLength(1);
    short.remove('c', '#', undefined);
    expect(short.match('long/topic').direct).toHaveLength(0);
  });
});

describe('TopicTrie remove and routes', () => {
  it('removes only the named (client, filter, group) and returns it', () => {
    const trie = new TopicTrie();
    const direct = entry('c', 'a/b');
    const shared = entry('c', 'a/b', 'g');
    trie.add(direct);
    trie.add(shared);
    expect(trie.remove('c', 'a/b', 'h')).toBeUndefined();
    expect(trie.remove('other', 'a/b', undefined)).toBeUndefined();
    expect(trie.remove('c', 'a/x', undefined)).toBeUndefined();
    expect(trie.remove('c', 'a/b', 'g')).toBe(shared);
    expect(trie.remove('c', 'a/b', undefined)).toBe(direct);
    expect(trie.size).toBe(0);
  });

  it('prunes empty nodes', () => {
    const trie = new TopicTrie();
    trie.add(entry('c', 'a/b/c/d'));
    trie.add(entry('c', 'a/+/#'));
    trie.add(entry('c', 'a'));
    trie.remove('c', 'a/b/c/d', undefined);
    trie.remove('c', 'a/+/#', undefined);
    expect([...trie.routes()]).toEqual([{ filter: 'a', count: 1 }]);
    // An intermediate node without entries goes too once its last descendant leaves.
    trie.remove('c', 'a', undefined);
    expect([...trie.routes()]).toEqual([]);
    trie.add(entry('c', 'a/b'));
    expect(trie.remove('c', 'a', undefined)).toBeUndefined();
    expect(directOf(trie.match('a/b'))).toEqual(['c a/b']);
  });

  it('reports distinct filters with counts, shared ones with their $share prefix', () => {
    const trie = new TopicTrie();
    trie.add(entry('c1', 'a/+'));
    trie.add(entry('c2', 'a/+'));
    trie.add(entry('c1', 'a/+', 'g'));
    trie.add(entry('c3', '#'));
    const routes = [...trie.routes()].map((r) => `${r.filter}=${r.count}`).sort();
    expect(routes).toEqual(['#=1', '$share/g/a/+=1', 'a/+=2']);
    expect(trie.size).toBe(4);
  });

  it('clear drops everything', () => {
    const trie = new TopicTrie();
    trie.add(entry('c', '#'));
    expect(trie.match('a').direct).toHaveLength(1);
    trie.clear();
    expect(trie.size).toBe(0);
    expect(trie.match('a').direct).toHaveLength(0);
  });

  it('handles very deep topics without recursion', () => {
    const trie = new TopicTrie();
    const deep = Array.from({ length: 20_000 }, (_, i) => `l${i % 3}`).join('/');
    trie.add(entry('c', deep));
    trie.add(entry('d', '#'));
    expect(directOf(trie.match(deep))).toEqual([`c ${deep}`, 'd #']);
    expect(trie.remove('c', deep, undefined)).toBeDefined();
    expect([...trie.routes()]).toEqual([{ filter: '#', count: 1 }]);
  });
});
