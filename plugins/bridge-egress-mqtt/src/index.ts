/**
 * @rmqtt-ts/plugin-bridge-egress-mqtt — RMQTT's MQTT egress bridge: local messages matching an entry's
 * topic filter are published to a remote broker (MQTT 3.1.1 or 5, TCP or TLS) under a mapped topic.
 * Fed by the message.publish hook through a bounded channel per client: a slow or absent remote never
 * slows local delivery; what does not fit is dropped, counted (`bridge_egress_mqtt.dropped`) and logged.
 * Bridged messages are not forwarded (bridge origin), so bridges between brokers cannot loop.
 */
import { definePlugin, remainingExpirySeconds, topicMatches, type Message, type MessageProperties } from '@rmqtt-ts/plugin-api';
import { LogThrottle, bridgeClientId, mqttClientOptions, serverText, skipLevels, type MqttConnect, type MqttPublishOptions, type MqttPublishPacket } from '@rmqtt-ts/plugin-api/bridge';
import mqtt from 'mqtt';
import { ResendStore } from './resend-store.js';
import { configSchema, parseBridges, type EgressBridge, type EgressConfig, type EgressEntry } from './config.js';
import { Sink, type Outgoing } from './sink.js';

export { configSchema, parseBridges, type EgressBridge, type EgressConfig, type EgressEntry } from './config.js';

const connect = mqtt.connect as unknown as MqttConnect;

/** One entry of one enabled bridge, with its clients. */
interface Route {
  bridge: EgressBridge;
  index: number;
  entry: EgressEntry;
  sinks: Sink[];
}

const PLAIN_OPTIONS: ReadonlyArray<readonly [MqttPublishOptions, MqttPublishOptions]> = ([0, 1, 2] as const).map(
  (qos) => [Object.freeze({ qos, retain: false }), Object.freeze({ qos, retain: true })] as const,
);

/** FNV-1a of the topic: one topic always goes through the same client, so its order is kept. */
function topicHash(topic: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < topic.length; i++) h = Math.imul(h ^ topic.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** MQTT 5 properties as mqtt.js takes them (user properties as an object of strings or lists). */
function v5Properties(p: MessageProperties, message: Message, now: number): MqttPublishPacket['properties'] {
  const out: NonNullable<MqttPublishPacket['properties']> = {};
  if (p.payloadFormatIndicator !== undefined) out.payloadFormatIndicator = p.payloadFormatIndicator === 1;
  if (p.messageExpiryInterval !== undefined) {
    const left = remainingExpirySeconds(message, now);
    if (left !== undefined) out.messageExpiryInterval = left;
  }
  if (p.contentType !== undefined) out.contentType = p.contentType;
  if (p.responseTopic !== undefined) out.responseTopic = p.responseTopic;
  if (p.correlationData !== undefined) out.correlationData = p.correlationData;
  if (p.userProperties !== undefined && p.userProperties.length > 0) {
    const up: Record<string, string | string[]> = {};
    for (const [k, v] of p.userProperties) {
      const had = up[k];
      up[k] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v];
    }
    out.userProperties = up;
  }
  return out;
}

export default definePlugin<EgressConfig>({
  name: 'bridge-egress-mqtt',
  apiVersion: '^1.0.0',
  description: 'MQTT egress bridge: local messages to remote MQTT brokers',
  configSchema,
  create(ctx) {
    const metrics = ctx.broker.metrics;
    const logger = ctx.logger;
    let routes: Route[] = [];
    let running = false;
    const stats = { forwarded: 0, dropped: 0, skipped_bridged: 0 };
    const dropLog = new LogThrottle();
    const failureLog = new LogThrottle();
    /** While a reload swaps the clients, the old routes: messages for them are dropped (and counted). */
    let reloading: Route[] | undefined;

    function dropped(why: string, detail: Record<string, unknown> = {}, n = 1): void {
      stats.dropped += n;
      metrics.inc('bridge_egress_mqtt.dropped', n);
      const count = dropLog.hit();
      if (count > 0) logger.warn({ ...detail, dropped: count, reason: why }, 'bridge messages dropped');
    }

    function failed(clientId: string, err: Error): void {
      metrics.inc('bridge_egress_mqtt.failed');
      const count = failureLog.hit();
      if (count > 0) logger.warn({ client_id: clientId, error: err.message, failed: count }, 'a bridged message was not delivered to the remote');
    }

    function open(bridges: EgressBridge[]): Route[] {
      const out: Route[] = [];
      try {
        for (const bridge of bridges) {
          if (!bridge.enable) continue;
          const bridgeLogger = logger.child({ bridge: bridge.name, server: serverText(bridge.server) });
          bridge.entries.forEach((entry, index) => {
            const route: Route = { bridge, index, entry, sinks: [] };
            out.push(route);
            for (let n = 0; n < bridge.concurrentClientLimit; n++) {
              const clientId = bridgeClientId(bridge.clientIdPrefix, bridge.name, 'egress', ctx.broker.nodeId, index, n);
              const options = { ...mqttClientOptions(bridge, clientId), outgoingStore: new ResendStore() };
              route.sinks.push(new Sink(connect, options, bridge.messageChannelCapacity, bridgeLogger, failed));
            }
          });
        }
      } catch (err) {
        // e.g. a TLS file that went away since the config was checked: close what was opened
        void close(out, 'start failed');
        throw err;
      }
      return out;
    }

    async function close(list: Route[], why: string): Promise<void> {
      const unsent = (await Promise.all(list.flatMap((r) => r.sinks.map((s) => s.close())))).reduce((a, b) => a + b, 0);
      if (unsent > 0) {
        stats.dropped += unsent;
        metrics.inc('bridge_egress_mqtt.dropped', unsent);
        logger.warn({ unsent }, `bridge clients closed (${why}) with messages not sent or not acknowledged by the remote`);
      }
    }

    function forward(message: Message): void {
      if (message.from.type === 'bridge') {
        // bridge origin: it came over a bridge, it does not go out over one
        stats.skipped_bridged++;
        return;
      }
      if (reloading !== undefined) {
        for (const r of reloading) if (topicMatches(r.entry.filter, message.topic)) dropped('reloading', { bridge: r.bridge.name, entry: r.index });
        return;
      }
      const now = Date.now();
      if (message.expiresAt !== 0 && message.expiresAt <= now) return;
      let hash = -1;
      for (let i = 0; i < routes.length; i++) {
        const route = routes[i]!;
        const e = route.entry;
        if (!topicMatches(e.filter, message.topic)) continue;
        const sinks = route.sinks;
        let k = 0;
        if (sinks.length > 1) {
          if (hash < 0) hash = topicHash(message.topic);
          k = hash % sinks.length;
        }
        const sink = sinks[k]!;
        if (sink.full) {
          dropped('channel full', { bridge: route.bridge.name, entry: route.index, client_id: sink.link.clientId, capacity: route.bridge.messageChannelCapacity });
          continue;
        }
        const remoteTopic = e.topic.hasPlaceholder ? e.topic.fill(skipLevels(message.topic, e.skipLevels)) : e.topic.text;
        if (remoteTopic === '') {
          dropped('empty remote topic', { bridge: route.bridge.name, entry: route.index, topic: message.topic });
          continue;
        }
        const qos = e.qos ?? message.qos;
        const retain = e.retain ?? message.retain;
        const o: Outgoing = {
          topic: remoteTopic,
          payload: message.payload,
          // mqtt.js copies the options: MQTT 3.1.1's six possible ones are shared
          options: route.bridge.mqttVer === 5 ? { qos, retain, properties: v5Properties(message.properties, message, now) } : PLAIN_OPTIONS[qos]![retain ? 1 : 0]!,
        };
        if (!sink.push(o)) continue;
        stats.forwarded++;
        metrics.inc('bridge_egress_mqtt.forwarded');
      }
    }

    return {
      init() {
        // after every other transform: what is forwarded is what local subscribers get
        ctx.hooks.on(
          'message.publish',
          (message) => {
            if (routes.length > 0 || reloading !== undefined) forward(message);
            return message;
          },
          { priority: -1000 },
        );
      },
      start() {
        const bridges = parseBridges(ctx.config.bridges);
        if (!bridges.some((b) => b.enable)) logger.info({ bridges: bridges.length }, 'no bridge is enabled (enable = true in a [[bridges]] table)');
        routes = open(bridges);
        running = true;
      },
      async stop() {
        running = false;
        const old = routes;
        routes = [];
        await close(old, 'plugin stopped');
        return true;
      },
      async reload(next) {
        const bridges = parseBridges(next.bridges);
        const old = routes;
        routes = [];
        if (running) reloading = old;
        try {
          await close(old, 'config reloaded');
          if (running) routes = open(bridges);
        } finally {
          reloading = undefined;
        }
      },
      attrs() {
        return {
          ...stats,
          bridges: routes.flatMap((r) =>
            r.sinks.map((s) => ({
              name: r.bridge.name,
              entry_idx: r.index,
              client_id: s.link.clientId,
              server: serverText(r.bridge.server),
              connected: s.link.connected,
              waiting: s.waiting,
              in_flight: s.inFlight,
              sent: s.stats.sent,
              failed: s.stats.failed,
              connects: s.link.connects,
              failures: s.link.failures,
              last_error: s.link.lastError ?? null,
            })),
          ),
        };
      },
      async dispose() {
        running = false;
        const old = routes;
        routes = [];
        await close(old, 'broker stopped');
      },
    };
  },
});
