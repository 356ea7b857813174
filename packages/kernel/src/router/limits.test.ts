import { describe, expect, it } from 'vitest';
import { SubscriptionLimits } from './limits.js';

describe('SubscriptionLimits', () => {
  it('admits at most n distinct clients on a $limit/n filter', () => {
    const limits = new SubscriptionLimits();
    expect(limits.tryAcquire('t', 'a', 2)).toBe(true);
    expect(limits.tryAcquire('t', 'b', 2)).toBe(true);
    expect(limits.tryAcquire('t', 'c', 2)).toBe(false);
    expect(limits.holders('t')).toBe(2);
  });

  it('lets a holder subscribe again without taking a second slot', () => {
    const limits = new SubscriptionLimits();
    expect(limits.tryAcquire('t', 'a', 1)).toBe(true);
    expect(limits.tryAcquire('t', 'a', 1)).toBe(true);
    expect(limits.holders('t')).toBe(1);
  });

  it('frees the slot on release', () => {
    const limits = new SubscriptionLimits();
    limits.tryAcquire('t', 'a', 1);
    expect(limits.tryAcquire('t', 'b', 1)).toBe(false);
    limits.release('t', 'a');
    expect(limits.tryAcquire('t', 'b', 1)).toBe(true);
    limits.release('t', 'nobody');
    limits.release('other', 'b');
    expect(limits.holders('t')).toBe(1);
  });

  it('counts per exact filter text', () => {
    const limits = new SubscriptionLimits();
    expect(limits.tryAcquire('a/+', 'x', 1)).toBe(true);
    expect(limits.tryAcquire('a/b', 'y', 1)).toBe(true);
    expect(limits.tryAcquire('a/#', 'z', 1)).toBe(true);
  });

  it('keeps an exclusive holder alone when a newcomer asks for a larger limit', () => {
    const limits = new SubscriptionLimits();
    expect(limits.tryAcquire('t', 'a', 1)).toBe(true);
    expect(limits.tryAcquire('t', 'b', 5)).toBe(false);
  });

  it('clear drops every slot', () => {
    const limits = new SubscriptionLimits();
    limits.tryAcquire('t', 'a', 1);
    limits.clear();
    expect(limits.holders('t')).toBe(0);
    expect(limits.tryAcquire('t', 'b', 1)).toBe(true);
  });
});
