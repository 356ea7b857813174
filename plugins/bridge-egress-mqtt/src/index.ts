/**
 * @rmqtt-ts/plugin-bridge-egress-mqtt — RMQTT's MQTT egress bridge: local messages matching an entry's
 * topic filter are published to a remote broker (MQTT 3.1.1 or 5, TCP or TLS) under a mapped topic.
 * Fed by the message.publish hook through a bounded channel per client: a slow or absent remote never
 * slows local delivery; what does not fit is dropped, counted (`bridge_egress_mqtt.dropped`) and logged.
 * Bridged messages are not forwarded (bridge origin), so bridges between brokers cannot loop.
 */
import { definePlugin, remainingExpirySeconds, topicMatches, type Message, type MessageProperties } from '@rmqtt-ts/plugin-api';
import { bridgeClientId, mqttClientOptions, serverText, skipLevels, type MqttConnect, type MqttPublishPacket } from '@rmqtt-ts/plugin-api/bridge';
import mqtt from 'mqtt';
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
    let droppedSinceLog = 0;
    let dropLoggedAt = 0;
    let failureLoggedAt = 0;

    function dropped(route: Route, sink: Sink | undefined, why: string): void {
      stats.dropped++;
      metrics.inc('bridge_egress_mqtt.dropped');
      droppedSinceLog++;
      const now = Date.now();
      if (now - dropLoggedAt >= 10_000) {
        logger.warn({ bridge: route.bridge.name, entry: route.index, client_id: sink?.link.clientId, dropped: droppedSinceLog, capacity: route.bridge.messageChannelCapacity, reason: why }, 'bridge messages dropped');
        dropLoggedAt = now;
        droppedSinceLog = 0;
      }
    }

    function failed(clientId: string, err: Error): void {
      metrics.inc('bridge_egress_mqtt.failed');
      const now = Date.now();
      if (now - failureLoggedAt >= 10_000) {
        logger.warn({ client_id: clientId, error: err.message }, 'remote broker refused a bridged message');
        failureLoggedAt = now;
      }
    }

    function open(bridges: EgressBridge[]): Route[] {
      const out: Route[] = [];
      for (const bridge of bridges) {
        if (!bridge.enable) continue;
        const bridgeLogger = logger.child({ bridge: bridge.name, server: serverText(bridge.server) });
        bridge.entries.forEach((entry, index) => {
          const sinks: Sink[] = [];
          for (let n = 0; n < bridge.concurrentClientLimit; n++) {
            const clientId = bridgeClientId(bridge.clientIdPrefix, bridge.name, 'egress', ctx.broker.nodeId, index, n);
            sinks.push(new Sink(connect, mqttClientOptions(bridge, clientId), bridge.messageChannelCapacity, bridgeLogger, failed));
          }
          out.push({ bridge, index, entry, sinks });
        });
      }
      return out;
    }

    async function close(list: Route[], why: string): Promise<void> {
      const unsent = (await Promise.all(list.flatMap((r) => r.sinks.map((s) => s.close())))).reduce((a, b) => a + b, 0);
      if (unsent > 0) {
        stats.dropped += unsent;
        metrics.inc('bridge_egress_mqtt.dropped', unsent);
        logger.warn({ unsent }, `bridge clients closed (${why}) with messages not yet acknowledged by the remote`);
      }
    }

    function forward(message: Message): void {
      if (message.from.type === 'bridge') {
        // bridge origin: it came over a bridge, it does not go out over one
        stats.skipped_bridged++;
        return;
      }
      const now = Date.now();
      if (message.expiresAt !== 0 && message.expiresAt <= now) return;
      let hash = -1;
      for (let i = 0; i < routes.length; i++) {
        const route = routes[i]!;
        const e = route.entry;
        if (!topicMatches(e.filter, message.topic)) continue;
        if (hash < 0) hash = route.sinks.length > 1 ? topicHash(message.topic) : 0;
        const sink = route.sinks[hash % route.sinks.length]!;
        if (sink.full) {
          dropped(route, sink, 'channel full');
          continue;
        }
        const remoteTopic = e.topic.hasPlaceholder ? e.topic.fill(skipLevels(message.topic, e.skipLevels)) : e.topic.text;
        if (remoteTopic === '') {
          dropped(route, sink, `remote topic is empty for "${message.topic}"`);
          continue;
        }
        const o: Outgoing = {
          topic: remoteTopic,
          payload: message.payload,
          options: { qos: e.qos ?? message.qos, retain: e.retain ?? message.retain },
        };
        if (route.bridge.mqttVer === 5) o.options.properties = v5Properties(message.properties, message, now);
        if (sink.push(o)) {
          stats.forwarded++;
          metrics.inc('bridge_egress_mqtt.forwarded');
        } else {
          dropped(route, sink, 'channel full');
        }
      }
    }

    return {
      init() {
        // after every other transform: what is forwarded is what local subscribers get
        ctx.hooks.on(
          'message.publish',
          (message) => {
            if (routes.length > 0) forward(message);
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
        await close(old, 'config reloaded');
        if (running) routes = open(bridges);
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
