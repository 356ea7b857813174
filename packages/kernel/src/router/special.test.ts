import { describe, expect, it } from 'vitest';
import { parseDelayedTopic, parseSubscriptionFilter, type FilterParseOptions } from './special.js';

const plain: FilterParseOptions = { limitSubscription: false, maxTopicLevels: 0 };
const limits: FilterParseOptions = { limitSubscription: true, maxTopicLevels: 0 };

describe('parseSubscriptionFilter', () => {
  it('passes an ordinary filter through', () => {
    expect(parseSubscriptionFilter('a/+/#', plain)).toEqual({ ok: true, filter: 'a/+/#', shareGroup: undefined, limit: undefined });
    expect(parseSubscriptionFilter('$SYS/#', plain)).toEqual({ ok: true, filter: '$SYS/#', shareGroup: undefined, limit: undefined });
  });

  it('rejects invalid filters', () => {
    for (const raw of ['', 'a/#/b', 'a#', 'a/b#', '+a', 'a/+b', 'a\u0000b', '$exclusive/a#']) {
      expect(parseSubscriptionFilter(raw, plain), raw).toEqual({ ok: false, reason: 'invalid_filter' });
    }
  });

  it('parses $share/{group}/{filter}', () => {
    expect(parseSubscriptionFilter('$share/g1/a/+', plain)).toEqual({ ok: true, filter: 'a/+', shareGroup: 'g1', limit: undefined });
    expect(parseSubscriptionFilter('$share/g/#', limits)).toEqual({ ok: true, filter: '#', shareGroup: 'g', limit: undefined });
    // Prefixes do not nest: the rest is a literal filter.
    expect(parseSubscriptionFilter('$share/g/$exclusive/t', limits)).toEqual({ ok: true, filter: '$exclusive/t', shareGroup: 'g', limit: undefined });
  });

  it('rejects an empty ShareName, a missing filter or a wildcard in the ShareName [MQTT-4.8.2-1, -2]', () => {
    for (const raw of ['$share/', '$share//a', '$share/g', '$share/g/', '$share/g+/a', '$share/+/a', '$share/#/a', '$share/g#x/a', '$share/g/a/#/b', '$share/g/a+']) {
      expect(parseSubscriptionFilter(raw, plain), raw).toEqual({ ok: false, reason: 'invalid_share' });
    }
  });

  it('takes $share without its slash as a literal filter', () => {
    expect(parseSubscriptionFilter('$share', plain)).toEqual({ ok: true, filter: '$share', shareGroup: undefined, limit: undefined });
    expect(parseSubscriptionFilter('$shared/g/a', plain)).toEqual({ ok: true, filter: '$shared/g/a', shareGroup: undefined, limit: undefined });
  });

  it('parses $exclusive/ and $limit/n/ when limit_subscription is on', () => {
    expect(parseSubscriptionFilter('$exclusive/a/b', limits)).toEqual({ ok: true, filter: 'a/b', shareGroup: undefined, limit: 1 });
    expect(parseSubscriptionFilter('$limit/5/a/+', limits)).toEqual({ ok: true, filter: 'a/+', shareGroup: undefined, limit: 5 });
    expect(parseSubscriptionFilter('$limit/12/#', limits)).toEqual({ ok: true, filter: '#', shareGroup: undefined, limit: 12 });
  });

  it('takes $exclusive/ and $limit/ literally when limit_subscription is off', () => {
    expect(parseSubscriptionFilter('$exclusive/a', plain)).toEqual({ ok: true, filter: '$exclusive/a', shareGroup: undefined, limit: undefined });
    expect(parseSubscriptionFilter('$limit/2/a', plain)).toEqual({ ok: true, filter: '$limit/2/a', shareGroup: undefined, limit: undefined });
    expect(parseSubscriptionFilter('$exclusive', limits)).toEqual({ ok: true, filter: '$exclusive', shareGroup: undefined, limit: undefined });
  });

  it('rejects malformed $exclusive and $limit forms', () => {
    for (const raw of ['$exclusive/', '$limit/', '$limit/3', '$limit/3/', '$limit//a', '$limit/0/a', '$limit/-1/a', '$limit/+1/a', '$limit/x/a', '$limit/1.5/a', '$limit/ 2/a', '$limit/2/a#', '$limit/99999999999999999999/a']) {
      expect(parseSubscriptionFilter(raw, limits), raw).toEqual({ ok: false, reason: 'invalid_filter' });
    }
  });

  it('counts levels on the filter without its prefix', () => {
    const opts = { limitSubscription: true, maxTopicLevels: 3 };
    expect(parseSubscriptionFilter('a/b/c', opts).ok).toBe(true);
    expect(parseSubscriptionFilter('a/b/c/d', opts)).toEqual({ ok: false, reason: 'too_many_levels' });
    expect(parseSubscriptionFilter('$share/g/a/b/c', opts).ok).toBe(true);
    expect(parseSubscriptionFilter('$share/g/a/b/c/d', opts)).toEqual({ ok: false, reason: 'too_many_levels' });
    expect(parseSubscriptionFilter('$limit/2/a/b/c', opts).ok).toBe(true);
    expect(parseSubscriptionFilter('$exclusive/a//b/', opts)).toEqual({ ok: false, reason: 'too_many_levels' });
  });
});

describe('parseDelayedTopic', () => {
  it('splits $delayed/{seconds}/{topic}', () => {
    expect(parseDelayedTopic('$delayed/10/a/b')).toEqual({ delaySeconds: 10, topic: 'a/b' });
    expect(parseDelayedTopic('$delayed/0/a')).toEqual({ delaySeconds: 0, topic: 'a' });
    expect(parseDelayedTopic('$delayed/5//')).toEqual({ delaySeconds: 5, topic: '/' });
  });

  it('returns undefined for a malformed prefix or topic', () => {
    for (const topic of ['a/b', '$delayed', '$delayed/', '$delayed/10', '$delayed/10/', '$delayed//a', '$delayed/-1/a', '$delayed/1.5/a', '$delayed/x/a', '$delayed/10/a/+', '$delayed/10/#', '$delayed/99999999999999999999/a']) {
      expect(parseDelayedTopic(topic), topic).toBeUndefined();
    }
  });
});
