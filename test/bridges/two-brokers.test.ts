/**
 * Two rmqtt-ts brokers bridged to each other with the egress and ingress bridges: both directions at
 * QoS 0/1/2 over MQTT 3.1.1 and 5, and bridges both ways — egress both ways, ingress both ways, and one
 * of each — that must not hand a message back and forth (bridge origin). First, bridge origin at the
 * wire: what a client named as an egress bridge publishes is a bridged message, and bridged messages
 * are not delivered to a client named as an ingress bridge.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import egress from '@rmqtt-ts/plugin-bridge-egress-mqtt';
import ingress from '@rmqtt-ts/plugin-bridge-ingress-mqtt';
import retainer from '@rmqtt-ts/plugin-retainer';
import { RawClient, bridgeTable, recorder, uniqueId, useTestScope, type TestBroker } from '@rmqtt-ts/testkit';

const scope = useTestScope();

/** A raw client closed after the test. */
function raw(...cs: RawClient[]): void {
  for (const c of cs) scope.closeAfterEach({ close: () => c.socket.destroy() });
}

describe('bridge origin at the wire', () => {
  it('a PUBLISH from an ":egress:" client is a bridged message; bridged messages skip ":ingress:" clients, retained ones too', async () => {
    const b = await scope.broker({ plugins: [retainer] });
    const { client: bridgeIn } = await RawClient.connect(b.port(), { clientId: 'cloud:link:ingress:2:0:0' });
    const { client: plain } = await RawClient.connect(b.port(), { clientId: uniqueId('plain') });
    const { client: bridgeOut } = await RawClient.connect(b.port(), { clientId: 'cloud:link:egress:2:0:0' });
    raw(bridgeIn, plain, bridgeOut);
    await bridgeIn.subscribe({ filter: 'o/#', qos: 1 });
    await plain.subscribe({ filter: 'o/#', qos: 1 });
    await bridgeOut.publish('o/bridged', 'from a bridge', { qos: 1, retain: true });
    const got = await plain.expect(3);
    expect(got.topic).toBe('o/bridged');
    await expect(bridgeIn.next(300)).rejects.toThrow(/no packet/);
    expect(b.broker.metrics.metrics()['messages.publish.bridge']).toBe(1);
    // a message from an ordinary client reaches the ingress bridge's client as any other subscriber
    await plain.send({ type: 4, packetId: got.packetId!, reasonCode: 0, properties: {} });
    const { client: other } = await RawClient.connect(b.port(), { clientId: uniqueId('other') });
    raw(other);
    await other.publish('o/plain', 'ordinary', { qos: 1 });
    expect((await bridgeIn.expect(3)).topic).toBe('o/plain');
    // retained: a new ingress-bridge subscription does not get the bridged retained message
    const { client: lateIn } = await RawClient.connect(b.port(), { clientId: 'cloud:late:ingress:2:0:0' });
    raw(lateIn);
    await lateIn.subscribe({ filter: 'o/bridged', qos: 1 });
    await expect(lateIn.next(300)).rejects.toThrow(/no packet/);
  });

  it('an ordinary client id that merely contains ":ingress:" gets bridged messages; a shared group passes them to a member that is no ingress bridge', async () => {
    const b = await scope.broker({});
    const { client: lookalike } = await RawClient.connect(b.port(), { clientId: 'plant:ingress:valve-7' });
    const { client: bridgeIn } = await RawClient.connect(b.port(), { clientId: 'cloud:link:ingress:2:0:0' });
    const { client: worker } = await RawClient.connect(b.port(), { clientId: uniqueId('worker') });
    const { client: bridgeOut } = await RawClient.connect(b.port(), { clientId: 'cloud:link:egress:2:0:0' });
    raw(lookalike, bridgeIn, worker, bridgeOut);
    await lookalike.subscribe({ filter: 'p/#', qos: 0 });
    // the group: an ingress bridge client first (round robin would pick it) and an ordinary worker
    await bridgeIn.subscribe({ filter: '$share/g/p/#', qos: 0 });
    await worker.subscribe({ filter: '$share/g/p/#', qos: 0 });
    for (let i = 0; i < 4; i++) await bridgeOut.publish('p/x', String(i), { qos: 0 });
    const four = async (c: RawClient): Promise<string[]> => {
      const got: string[] = [];
      for (let i = 0; i < 4; i++) got.push((await c.expect(3)).payload.toString());
      return got;
    };
    expect(await four(lookalike)).toEqual(['0', '1', '2', '3']);
    expect(await four(worker)).toEqual(['0', '1', '2', '3']);
    await expect(bridgeIn.next(300)).rejects.toThrow(/no packet/);
  });
});

interface Pair {
  a: TestBroker;
  b: TestBroker;
}

/** Two brokers (node 1 and node 2) with both bridge plugins registered, not yet started. */
async function pair(): Promise<Pair & { dirA: string; dirB: string }> {
  const dirA = scope.dir('rmqtt-bridge-a-');
  const dirB = scope.dir('rmqtt-bridge-b-');
  const a = await scope.broker({ config: { 'node.id': 1 }, plugins: [egress, ingress, retainer], startups: ['retainer'], pluginsDir: dirA });
  const b = await scope.broker({ config: { 'node.id': 2 }, plugins: [egress, ingress, retainer], startups: ['retainer'], pluginsDir: dirB });
  return { a, b, dirA, dirB };
}

function bridge(name: string, port: number, ver: 'v4' | 'v5', entries: string): string {
  return bridgeTable({ name: `"${name}"`, client_id_prefix: '"n"', server: `"tcp://127.0.0.1:${port}"`, mqtt_ver: `"${ver}"` }, entries);
}

const egressEntry = (filter: string, topic: string): string => `[[bridges.entries]]\nlocal.topic_filter = "${filter}"\nremote.topic = "${topic}"\n`;
const ingressEntry = (filter: string, topic: string): string => `[[bridges.entries]]\nremote.topic = "${filter}"\nremote.qos = 2\nlocal.topic = "${topic}"\n`;

async function startBridge(broker: TestBroker, dir: string, kind: 'egress' | 'ingress', toml: string): Promise<void> {
  writeFileSync(join(dir, `rmqtt-bridge-${kind}-mqtt.toml`), toml);
  await broker.broker.control.startPlugin(`bridge-${kind}-mqtt`);
  const attrsOf = () => broker.broker.control.plugin(`bridge-${kind}-mqtt`)!.attrs as { bridges: Array<{ connected: boolean; subscribed?: boolean }> };
  await expect
    .poll(() => attrsOf().bridges.every((x) => x.connected && (kind === 'egress' || x.subscribed === true)), { timeout: 10_000 })
    .toBe(true);
}

async function reader(b: TestBroker, filter: string, version: 4 | 5 = 4) {
  const c = await scope.client(b.url(), { protocolVersion: version });
  const rec = recorder(c);
  await c.subscribeAsync(filter, { qos: 2 });
  return rec;
}

async function writer(b: TestBroker, version: 4 | 5 = 4): Promise<MqttClient> {
  return scope.client(b.url(), { protocolVersion: version });
}

describe('two rmqtt-ts brokers', () => {
  for (const ver of ['v4', 'v5'] as const) {
    it(`egress A → B and ingress B → A at QoS 0, 1 and 2 (${ver})`, async () => {
      const { a, b, dirA } = await pair();
      await startBridge(a, dirA, 'egress', bridge('up', b.port(), ver, egressEntry('up/#', 'fromA/${local.topic}')));
      await startBridge(a, dirA, 'ingress', bridge('down', b.port(), ver, ingressEntry('down/#', 'fromB/${remote.topic}')));
      const v = ver === 'v5' ? 5 : 4;
      const atB = await reader(b, 'fromA/#', v);
      const atA = await reader(a, 'fromB/#', v);
      const wa = await writer(a, v);
      const wb = await writer(b, v);
      for (const qos of [0, 1, 2] as const) {
        await wa.publishAsync(`up/q${qos}`, `a${qos}`, { qos });
        await wb.publishAsync(`down/q${qos}`, `b${qos}`, { qos });
      }
      expect((await atB.waitFor(3, 5000)).map((m) => [m.topic, m.payload.toString(), m.packet.qos])).toEqual([
        ['fromA/up/q0', 'a0', 0],
        ['fromA/up/q1', 'a1', 1],
        ['fromA/up/q2', 'a2', 2],
      ]);
      expect((await atA.waitFor(3, 5000)).map((m) => [m.topic, m.payload.toString(), m.packet.qos])).toEqual([
        ['fromB/down/q0', 'b0', 0],
        ['fromB/down/q1', 'b1', 1],
        ['fromB/down/q2', 'b2', 2],
      ]);
    });
  }

  /** Publish once on A; afterwards each side must hold exactly one copy, and no more arrive. */
  async function expectNoLoop(p: Pair, topic: string): Promise<void> {
    const atA = await reader(p.a, 't/#');
    const atB = await reader(p.b, 't/#');
    const w = await writer(p.a);
    await w.publishAsync(topic, 'once', { qos: 1 });
    await atA.waitFor(1, 5000);
    await atB.waitFor(1, 5000);
    await new Promise((r) => setTimeout(r, 800));
    expect(atA.messages.map((m) => m.topic)).toEqual([topic]);
    expect(atB.messages.map((m) => m.topic)).toEqual([topic]);
  }

  it('egress both ways on the same topics: no ping-pong', async () => {
    const p = await pair();
    await startBridge(p.a, p.dirA, 'egress', bridge('ab', p.b.port(), 'v5', egressEntry('t/#', '${local.topic}')));
    await startBridge(p.b, p.dirB, 'egress', bridge('ba', p.a.port(), 'v5', egressEntry('t/#', '${local.topic}')));
    await expectNoLoop(p, 't/egress-both');
    const attrsB = p.b.broker.control.plugin('bridge-egress-mqtt')!.attrs as { forwarded: number; skipped_bridged: number };
    expect(attrsB).toMatchObject({ forwarded: 0, skipped_bridged: 1 });
  });

  it('ingress both ways on the same topics: no ping-pong', async () => {
    const p = await pair();
    await startBridge(p.a, p.dirA, 'ingress', bridge('ab', p.b.port(), 'v4', ingressEntry('t/#', '${remote.topic}')));
    await startBridge(p.b, p.dirB, 'ingress', bridge('ba', p.a.port(), 'v4', ingressEntry('t/#', '${remote.topic}')));
    await expectNoLoop(p, 't/ingress-both');
  });

  it('egress and ingress between the same two brokers on the same topics: no echo', async () => {
    const p = await pair();
    await startBridge(p.a, p.dirA, 'egress', bridge('out', p.b.port(), 'v4', egressEntry('t/#', '${local.topic}')));
    await startBridge(p.a, p.dirA, 'ingress', bridge('in', p.b.port(), 'v4', ingressEntry('t/#', '${remote.topic}')));
    await expectNoLoop(p, 't/mixed');
  });
});
