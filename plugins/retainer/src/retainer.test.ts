import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { DeadlineScheduler, RawClient, describeRetainStore, recorder, testLogger, useTestScope, type Packet, type TestBroker } from '@rmqtt-ts/testkit';
// the plugin package does not depend on the kernel (only on the plugin API); its scheduler is what the broker hands plugins
import retainer, { RamRetainStore } from './index.js';

const RMQTT_RETAINER_TOML = '/work/shared/reference/rmqtt-configs/plugins/rmqtt-retainer.toml';

// ---------- conformance ----------

describeRetainStore('ram', async () => {
  const scheduler = new DeadlineScheduler(testLogger());
  const store = new RamRetainStore({ maxMessages: 0, maxPayloadSize: 1024 * 1024, ttl: 0 }, scheduler);
  return {
    store,
    close: () => {
      store.close();
      scheduler.close();
    },
  };
});

// ---------- through a broker ----------

const scope = useTestScope();
// raw clients go before the scope's clients and brokers: vitest runs after-hooks last-registered first
const rawClients: RawClient[] = [];
afterEach(() => {
  for (const r of rawClients.splice(0)) r.destroy();
});

/** A plugins dir holding rmqtt-retainer.toml with the given text. */
function pluginsDir(toml?: string): string {
  const dir = scope.dir('rmqtt-retainer-');
  if (toml !== undefined) writeFileSync(join(dir, 'rmqtt-retainer.toml'), toml);
  return dir;
}

function broker(toml?: string): Promise<TestBroker> {
  return scope.broker({ plugins: [retainer], pluginsDir: pluginsDir(toml) });
}

function client(b: TestBroker, protocolVersion: 4 | 5 = 5): Promise<MqttClient> {
  return scope.client(b.url(), { protocolVersion });
}

/** Retain a message (QoS 1, so the broker has handled it when this resolves). */
async function retain(pub: MqttClient, topic: string, payload: string | Buffer): Promise<void> {
  await pub.publishAsync(topic, payload, { qos: 1, retain: true });
}

/** What a fresh subscriber to `filter` is sent as retained messages: topic → payload, in arrival order. */
async function retainedFor(b: TestBroker, filter: string): Promise<{ topic: string; payload: string; retain: boolean }[]> {
  const { client: c } = await RawClient.connect(b.port(), { protocolVersion: 4 });
  rawClients.push(c);
  c.send({ type: 8, packetId: 1, subscriptions: [{ filter, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }], properties: {} });
  await c.expect(9);
  const got: { topic: string; payload: string; retain: boolean }[] = [];
  for (;;) {
    let p: Packet | null;
    try {
      p = await c.next(300);
    } catch {
      break; // silence: everything retained has arrived
    }
    if (p === null) throw new Error('connection closed');
    if (p.type !== 3) throw new Error(`unexpected packet type ${p.type}`);
    got.push({ topic: p.topic, payload: p.payload.toString(), retain: p.retain });
    if (p.qos > 0) c.send({ type: 4, packetId: p.packetId!, reasonCode: 0, properties: {} });
  }
  return got;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('retainer through a broker', () => {
  it('[MQTT-3.3.1-9] a new subscriber gets the retained message with RETAIN=1', async () => {
    const b = await broker();
    const pub = await client(b);
    await retain(pub, 'r/a', 'kept');
    expect(await retainedFor(b, 'r/#')).toEqual([{ topic: 'r/a', payload: 'kept', retain: true }]);
  });

  it('announces Retain Available (leaves the CONNACK property out)', async () => {
    const b = await broker();
    const { client: c, connack } = await RawClient.connect(b.port(), { protocolVersion: 5 });
    rawClients.push(c);
    expect(connack.reasonCode).toBe(0);
    expect(connack.properties.retainAvailable).toBeUndefined();
  });

  it('max_retained_messages: when full, a new topic is not retained', async () => {
    const b = await broker('max_retained_messages = 2\n');
    const pub = await client(b);
    await retain(pub, 'm/a', 'a1');
    await retain(pub, 'm/b', 'b1');
    await retain(pub, 'm/c', 'c1');
    const got = await retainedFor(b, 'm/#');
    expect(got.map((m) => `${m.topic}=${m.payload}`).sort()).toEqual(['m/a=a1', 'm/b=b1']);
  });

  it('max_retained_messages: when full, an existing topic can still be replaced', async () => {
    const b = await broker('max_retained_messages = 2\n');
    const pub = await client(b);
    await retain(pub, 'm/a', 'a1');
    await retain(pub, 'm/b', 'b1');
    await retain(pub, 'm/a', 'a2');
    const got = await retainedFor(b, 'm/#');
    expect(got.map((m) => `${m.topic}=${m.payload}`).sort()).toEqual(['m/a=a2', 'm/b=b1']);
  });

  it('max_retained_messages: deleting one (empty payload) makes room for a new topic', async () => {
    const b = await broker('max_retained_messages = 2\n');
    const pub = await client(b);
    await retain(pub, 'm/a', 'a1');
    await retain(pub, 'm/b', 'b1');
    await retain(pub, 'm/a', '');
    await retain(pub, 'm/c', 'c1');
    const got = await retainedFor(b, 'm/#');
    expect(got.map((m) => `${m.topic}=${m.payload}`).sort()).toEqual(['m/b=b1', 'm/c=c1']);
  });

  it('max_payload_size: a larger retained message is delivered but not retained', async () => {
    const b = await broker('max_payload_size = "16B"\n');
    const sub = await client(b);
    const rec = recorder(sub);
    await sub.subscribeAsync('big/#', { qos: 1 });
    const pub = await client(b);
    const large = 'x'.repeat(17);
    await retain(pub, 'big/one', large);
    const live = await rec.next();
    expect(live.topic).toBe('big/one');
    expect(live.payload.toString()).toBe(large);
    expect(await retainedFor(b, 'big/#')).toEqual([]);
  });

  it('max_payload_size: a message at the limit is retained', async () => {
    const b = await broker('max_payload_size = "16B"\n');
    const pub = await client(b);
    await retain(pub, 'big/edge', 'y'.repeat(16));
    expect(await retainedFor(b, 'big/#')).toEqual([{ topic: 'big/edge', payload: 'y'.repeat(16), retain: true }]);
  });

  it('max_payload_size: a too-large retained message leaves the one retained before in place', async () => {
    const b = await broker('max_payload_size = "16B"\n');
    const pub = await client(b);
    await retain(pub, 'big/t', 'small');
    await retain(pub, 'big/t', 'z'.repeat(40));
    expect(await retainedFor(b, 'big/#')).toEqual([{ topic: 'big/t', payload: 'small', retain: true }]);
  });

  it('retained_message_ttl: a retained message is served until the TTL and gone after it', async () => {
    const b = await broker('retained_message_ttl = "1s"\n');
    const pub = await client(b);
    const t0 = Date.now();
    await retain(pub, 'ttl/a', 'short-lived');
    expect(await retainedFor(b, 'ttl/#')).toEqual([{ topic: 'ttl/a', payload: 'short-lived', retain: true }]);
    await sleep(Math.max(0, t0 + 1300 - Date.now()));
    expect(await retainedFor(b, 'ttl/#')).toEqual([]);
    expect(await b.broker.control.retained('ttl/#')).toEqual([]);
  });

  it('retained_message_ttl: the expired message is removed from the store, not only hidden', async () => {
    const b = await broker('retained_message_ttl = "500ms"\n');
    const pub = await client(b);
    await retain(pub, 'ttl/a', 'x');
    await retain(pub, 'ttl/b', 'y');
    expect(b.broker.control.plugin('retainer')?.attrs['retained']).toBe(2);
    // the broker's deadlines fire within about 1 s of their time
    await sleep(1800);
    expect(b.broker.control.plugin('retainer')?.attrs['retained']).toBe(0);
  });

  it('retained messages never expire by default', async () => {
    const b = await broker();
    const pub = await client(b, 4);
    await retain(pub, 'forever/a', 'v3 retained');
    await sleep(1200);
    expect(await retainedFor(b, 'forever/#')).toEqual([{ topic: 'forever/a', payload: 'v3 retained', retain: true }]);
  });

  it('refuses to stop: stopPlugin resolves false and retained messages are still served', async () => {
    const b = await broker();
    const pub = await client(b);
    await retain(pub, 'keep/a', 'still here');
    expect(await b.broker.control.stopPlugin('retainer')).toBe(false);
    expect(b.broker.control.plugin('retainer')).toMatchObject({ state: 'started', active: true });
    expect(await retainedFor(b, 'keep/#')).toEqual([{ topic: 'keep/a', payload: 'still here', retain: true }]);
    const { client: c, connack } = await RawClient.connect(b.port(), { protocolVersion: 5 });
    rawClients.push(c);
    expect(connack.properties.retainAvailable).toBeUndefined();
  });

  it('still takes new retained messages after a refused stop', async () => {
    const b = await broker();
    const pub = await client(b);
    await b.broker.control.stopPlugin('retainer');
    await retain(pub, 'keep/new', 'after');
    expect(await retainedFor(b, 'keep/#')).toEqual([{ topic: 'keep/new', payload: 'after', retain: true }]);
  });

  it('loads RMQTT’s own rmqtt-retainer.toml unchanged', async () => {
    const dir = pluginsDir();
    copyFileSync(RMQTT_RETAINER_TOML, join(dir, 'rmqtt-retainer.toml'));
    const b = await scope.broker({ plugins: [retainer], pluginsDir: dir });
    expect(b.broker.control.plugin('retainer')?.state).toBe('started');
    expect(b.broker.control.pluginConfig('retainer')).toEqual({
      storage: {
        type: 'ram',
        sled: { path: '/var/log/rmqtt/.cache/retain/{node}', cache_capacity: 3 * 1024 ** 3, sync_writes: false },
        // a secret: masked when shown
        redis: { url: '******', prefix: 'retain' },
      },
      max_retained_messages: 0,
      max_payload_size: 1024 * 1024,
      retained_message_ttl: 0,
      batch_messages_limit: 500,
      backend_timeout: 8000,
    });
    const pub = await client(b);
    await retain(pub, 'rmqtt/file', 'ok');
    expect(await retainedFor(b, 'rmqtt/#')).toEqual([{ topic: 'rmqtt/file', payload: 'ok', retain: true }]);
  });

  it('reload applies new limits at run time', async () => {
    const dir = pluginsDir('max_payload_size = "1KB"\n');
    const b = await scope.broker({ plugins: [retainer], pluginsDir: dir });
    const pub = await client(b);
    writeFileSync(join(dir, 'rmqtt-retainer.toml'), 'max_payload_size = "4B"\n');
    await b.broker.control.reloadPlugin('retainer');
    await retain(pub, 'reload/big', 'too long');
    await retain(pub, 'reload/ok', 'tiny');
    expect(await retainedFor(b, 'reload/#')).toEqual([{ topic: 'reload/ok', payload: 'tiny', retain: true }]);
    expect(b.broker.control.pluginConfig('retainer')['max_payload_size']).toBe(4);
  });

  it('a bad value in rmqtt-retainer.toml stops start-up with ERR_CONFIG naming the file and key', async () => {
    let err: { code?: string; message: string } | undefined;
    try {
      await broker('max_retained_messages = -3\n');
    } catch (e) {
      err = e as { code?: string; message: string };
    }
    expect(err?.code).toBe('ERR_CONFIG');
    expect(err?.message).toContain('rmqtt-retainer.toml');
    expect(err?.message).toContain('max_retained_messages');
  });
});
