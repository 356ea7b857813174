import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { useTestScope, type TestBroker } from '@rmqtt-ts/testkit';
import sharedSubscription from './index.js';

const RMQTT_SHARED_TOML = '/work/shared/reference/rmqtt-configs/plugins/rmqtt-shared-subscription.toml';
const FILE = 'rmqtt-shared-subscription.toml';

const scope = useTestScope();

function pluginsDir(toml?: string): string {
  const dir = scope.dir('rmqtt-shared-');
  if (toml !== undefined) writeFileSync(join(dir, FILE), toml);
  return dir;
}

function broker(dir: string): Promise<TestBroker> {
  return scope.broker({ plugins: [sharedSubscription], pluginsDir: dir });
}

function client(b: TestBroker, clientId: string): Promise<MqttClient> {
  return scope.client(b.url(), { protocolVersion: 5, clientId });
}

/**
 * Two members of `$share/g/s/#` and a publisher. `send(n, topic)` publishes n QoS 1 messages and
 * resolves with how many each member got, once all have arrived.
 */
async function group(b: TestBroker): Promise<{ send(n: number, topic: string): Promise<{ m1: number; m2: number }> }> {
  const m1 = await client(b, 'member-1');
  const m2 = await client(b, 'member-2');
  const pub = await client(b, 'publisher');
  const counts = { m1: 0, m2: 0 };
  let waiter: (() => void) | undefined;
  m1.on('message', () => {
    counts.m1++;
    waiter?.();
  });
  m2.on('message', () => {
    counts.m2++;
    waiter?.();
  });
  await m1.subscribeAsync('$share/g/s/#', { qos: 1 });
  await m2.subscribeAsync('$share/g/s/#', { qos: 1 });
  return {
    async send(n, topic) {
      const before = { ...counts };
      for (let i = 0; i < n; i++) await pub.publishAsync(topic, String(i), { qos: 1 });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${counts.m1 + counts.m2 - before.m1 - before.m2} of ${n} arrived`)), 3000);
        const check = (): void => {
          if (counts.m1 + counts.m2 - before.m1 - before.m2 >= n) {
            clearTimeout(timer);
            waiter = undefined;
            resolve();
          }
        };
        waiter = check;
        check();
      });
      // anything extra (a message delivered to both) would show in the totals
      await new Promise((r) => setTimeout(r, 100));
      return { m1: counts.m1 - before.m1, m2: counts.m2 - before.m2 };
    },
  };
}

async function rejection(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error('expected the promise to reject');
}

describe('shared-subscription plugin', () => {
  it('loads RMQTT’s own rmqtt-shared-subscription.toml unchanged', async () => {
    const dir = pluginsDir();
    copyFileSync(RMQTT_SHARED_TOML, join(dir, FILE));
    const b = await broker(dir);
    expect(b.broker.control.plugin('shared-subscription')?.state).toBe('started');
    expect(b.broker.control.pluginConfig('shared-subscription')).toEqual({ strategy: 'round_robin', sticky_cache_size: 100000 });
    expect(b.broker.ext.sharedSubscription).toEqual({ strategy: 'round_robin', stickyCacheSize: 100000 });
  });

  it('round_robin gives each of two members every other message', async () => {
    const b = await broker(pluginsDir('strategy = "round_robin"\n'));
    const g = await group(b);
    expect(await g.send(6, 's/one')).toEqual({ m1: 3, m2: 3 });
  });

  it('takes the strategy from the file (hash_topic sends one topic to one member)', async () => {
    const b = await broker(pluginsDir('strategy = "hash_topic"\n'));
    expect(b.broker.ext.sharedSubscription.strategy).toBe('hash_topic');
    const g = await group(b);
    const r = await g.send(6, 's/one');
    expect([r.m1, r.m2].sort()).toEqual([0, 6]);
  });

  it('a bad strategy value stops the plugin’s start with ERR_CONFIG naming the file and key', async () => {
    const err = await rejection(broker(pluginsDir('strategy = "fastest"\n')));
    expect(err.code).toBe('ERR_CONFIG');
    expect(err.message).toContain(FILE);
    expect(err.message).toContain('strategy');
    expect(err.message).toContain('fastest');
    // what was expected: the strategies
    expect(err.message).toContain('round_robin');
  });

  it('an unknown key in the file stops the start with ERR_CONFIG naming it', async () => {
    const err = await rejection(broker(pluginsDir('strategy = "random"\nstrategi = "random"\n')));
    expect(err.code).toBe('ERR_CONFIG');
    expect(err.message).toContain(FILE);
    expect(err.message).toContain('strategi');
  });

  it('reload switches the strategy at run time', async () => {
    const dir = pluginsDir('strategy = "round_robin"\n');
    const b = await broker(dir);
    const g = await group(b);
    expect(await g.send(4, 's/one')).toEqual({ m1: 2, m2: 2 });

    writeFileSync(join(dir, FILE), 'strategy = "hash_topic"\n');
    await b.broker.control.reloadPlugin('shared-subscription');
    expect(b.broker.control.pluginConfig('shared-subscription')['strategy']).toBe('hash_topic');
    expect(b.broker.ext.sharedSubscription.strategy).toBe('hash_topic');
    const r = await g.send(6, 's/one');
    expect([r.m1, r.m2].sort()).toEqual([0, 6]);
  });

  it('a reload with a bad strategy is refused with ERR_CONFIG and the strategy in force stays', async () => {
    const dir = pluginsDir('strategy = "hash_topic"\n');
    const b = await broker(dir);
    writeFileSync(join(dir, FILE), 'strategy = "fastest"\n');
    const err = await rejection(b.broker.control.reloadPlugin('shared-subscription'));
    expect(err.code).toBe('ERR_CONFIG');
    expect(err.message).toContain('strategy');
    expect(b.broker.ext.sharedSubscription.strategy).toBe('hash_topic');
    expect(b.broker.control.pluginConfig('shared-subscription')['strategy']).toBe('hash_topic');
  });

  it('stopping the plugin restores the kernel default, round_robin', async () => {
    const b = await broker(pluginsDir('strategy = "hash_topic"\n'));
    const g = await group(b);
    expect(await b.broker.control.stopPlugin('shared-subscription')).toBe(true);
    expect(b.broker.ext.sharedSubscription.strategy).toBe('round_robin');
    expect(await g.send(4, 's/one')).toEqual({ m1: 2, m2: 2 });
  });
});
