/**
 * Small helpers around RawClient and RawClientPool: connecting with the CONNACK at hand, a pool per
 * concurrent test, unique ids, PINGREQ as a sync point, a SUBSCRIBE that must be granted as asked, a
 * PUBLISH that must have been routed, a PUBLISH packet to send by hand, and a plugin refusing publishes.
 */
import type { Properties, PublishPacket, QoS } from '@rmqtt-ts/kernel';
import { definePlugin, type PluginDefinition } from '@rmqtt-ts/plugin-api';
import { RawClient, RawClientPool, type PacketOf, type RawConnectOptions } from './raw-client.js';

/** Options of a PUBLISH: those of `RawClient.publish`. */
export interface PublishOptions {
  qos?: QoS;
  retain?: boolean;
  dup?: boolean;
  properties?: Properties;
  /** Required for QoS 1 and 2 by `publishPacket`; `publishDone` takes the client's next one. */
  packetId?: number;
}

/**
 * Connect a client tracked by the pool and resolve with it and its CONNACK, whatever the reason code
 * (`pool.connect` requires 0). The client is tracked before CONNECT is written, so a refused
 * connection is destroyed with the others.
 */
export async function connectTracked(pool: RawClientPool, port: number, options: RawConnectOptions = {}): Promise<{ client: RawClient; connack: PacketOf<2> }> {
  const client = pool.track(await RawClient.open(port, { version: options.protocolVersion ?? 4 }));
  client.send(RawClient.connectPacket(options));
  const connack = await client.expect(2);
  return { client, connack };
}

/** Like `pool.connect` (CONNACK 0 required), but resolves with the CONNACK too, e.g. for Session Present. */
export async function connectAccepted(pool: RawClientPool, port: number, options: RawConnectOptions = {}): Promise<{ client: RawClient; connack: PacketOf<2> }> {
  const r = await connectTracked(pool, port, options);
  if (r.connack.reasonCode !== 0) throw new Error(`CONNACK ${r.connack.reasonCode} for ${options.clientId ?? 'client'}`);
  return r;
}

/**
 * A pool destroyed when the current test finishes, for concurrent tests (an afterEach would cut
 * across the tests still running): `poolForTest(onTestFinished)` from the test context.
 */
export function poolForTest(onTestFinished: (fn: () => void) => void): RawClientPool {
  const pool = new RawClientPool();
  onTestFinished(() => pool.destroyAll());
  return pool;
}

let idSeq = 0;

/** A client id or topic of its own: `${prefix}-${counter}-${6 random hex digits}`. */
export function uniqueId(prefix: string): string {
  return `${prefix}-${++idSeq}-${Math.random().toString(16).slice(2, 8)}`;
}

/** PINGREQ and await the PINGRESP. The broker handles packets in order: all sent before has been handled. */
export async function ping(client: RawClient, timeoutMs?: number): Promise<void> {
  client.send({ type: 12 });
  await client.expect(13, timeoutMs);
}

/** SUBSCRIBE to one filter and require the SUBACK to grant exactly the requested QoS. */
export async function subscribeGranted(client: RawClient, filter: string, qos: QoS = 0, properties: Properties = {}): Promise<PacketOf<9>> {
  const ack = await client.subscribe({ filter, qos }, properties);
  if (ack.reasonCodes.length !== 1 || ack.reasonCodes[0] !== qos) throw new Error(`SUBACK ${JSON.stringify(ack.reasonCodes)} for ${filter}, expected [${qos}]`);
  return ack;
}

/**
 * PUBLISH and wait until the broker has handled it. QoS 1 awaits the PUBACK; QoS 2 completes
 * PUBREC → PUBREL → PUBCOMP (a PUBREC with a failure code ends it), the PUBCOMP's packet id checked
 * too (`RawClient.publish` checks only the PUBREC's); QoS 0 is followed by a PINGREQ, whose PINGRESP
 * comes after the PUBLISH was routed. Resolves with the PUBACK or PUBREC, undefined for QoS 0.
 * Like `RawClient.publish`, it fails if another packet arrives first.
 */
export async function publishDone(client: RawClient, topic: string, payload: string | Buffer, options: PublishOptions = {}): Promise<PacketOf<4> | PacketOf<5> | undefined> {
  const qos = options.qos ?? 0;
  if (qos !== 2) {
    const ack = await client.publish(topic, payload, options);
    if (qos === 0) await ping(client);
    return ack;
  }
  const packetId = options.packetId ?? client.packetId();
  client.send(publishPacket(topic, payload, { ...options, packetId }));
  const rec = await client.expect(5);
  if (rec.packetId !== packetId) throw new Error(`PUBREC for packet id ${rec.packetId}, expected ${packetId}`);
  if (rec.reasonCode < 0x80) {
    client.send({ type: 6, packetId, reasonCode: 0, properties: {} });
    const comp = await client.expect(7);
    if (comp.packetId !== packetId) throw new Error(`PUBCOMP for packet id ${comp.packetId}, expected ${packetId}`);
  }
  return rec;
}

/** A PUBLISH packet to write with `client.send` (QoS 0, no retain, no DUP, no properties unless told). */
export function publishPacket(topic: string, payload: string | Buffer, options: PublishOptions = {}): PublishPacket {
  const qos = options.qos ?? 0;
  if (qos > 0 && options.packetId === undefined) throw new Error(`a QoS ${qos} PUBLISH needs a packetId`);
  return {
    type: 3,
    topic,
    payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload),
    qos,
    retain: options.retain ?? false,
    dup: options.dup ?? false,
    packetId: qos === 0 ? undefined : options.packetId,
    properties: options.properties ?? {},
  };
}

/**
 * A plugin whose publish ACL refuses every publish to a topic starting with `prefix`, wills included (a
 * v5 PUBACK then carries 0x87); other topics are left to the next handler.
 */
export function denyPublishTo(prefix: string): PluginDefinition {
  return definePlugin({
    name: 'test-deny-publish',
    apiVersion: '^1.0.0',
    create(ctx) {
      return {
        init() {
          ctx.hooks.on('message.publishCheckAcl', (e) => (e.message.topic.startsWith(prefix) ? { result: { allow: false }, proceed: false } : undefined));
        },
      };
    },
  });
}
