/**
 * @rmqtt-ts/plugin-bridge-ingress-mqtt — RMQTT's MQTT ingress bridge: clients on a remote broker (MQTT
 * 3.1.1 or 5, TCP or TLS) subscribe to each entry's remote topic filter, and what they receive is
 * published here under a mapped topic, as a bridged message. A remote QoS 1 message is acknowledged only
 * once it has been routed here; QoS 2 is routed once, before PUBREC over MQTT 5 (a PUBLISH resent before
 * its PUBREL is answered, not routed again) and before PUBCOMP over MQTT 3.1.1 (mqtt.js answers PUBREC
 * itself there and keeps the message until PUBREL). A
 * `$share/{group}/…` remote filter is subscribed by `concurrent_client_limit` clients that share the
 * load; any other filter by one client.
 */
import { definePlugin, ReasonCode, type Message, type MessageProperties, type UserProperty } from '@rmqtt-ts/plugin-api';
import { BridgeLink, LogThrottle, bridgeClientId, mqttClientOptions, serverText, skipLevels, type MqttConnect, type MqttPublishPacket } from '@rmqtt-ts/plugin-api/bridge';
import mqtt from 'mqtt';
import { configSchema, parseBridges, type IngressBridge, type IngressConfig, type IngressEntry } from './config.js';

export { configSchema, parseBridges, type IngressBridge, type IngressConfig, type IngressEntry } from './config.js';

const connect = mqtt.connect as unknown as MqttConnect;

/** One client subscribed for one entry. */
interface Source {
  bridge: IngressBridge;
  index: number;
  entry: IngressEntry;
  link: BridgeLink;
  received: number;
  /** QoS 2 packet ids routed and waiting for their PUBREL (a resent PUBLISH is not routed again). */
  awaitingRel: Set<number>;
  subscribed: boolean;
  /** A refused subscription's next try. */
  retry: ReturnType<typeof setTimeout> | undefined;
  closed: boolean;
}

function localProperties(p: MqttPublishPacket['properties']): MessageProperties {
  if (p === undefined) return {};
  const out: { -readonly [K in keyof MessageProperties]: MessageProperties[K] } = {};
  if (p.payloadFormatIndicator !== undefined) out.payloadFormatIndicator = p.payloadFormatIndicator ? 1 : 0;
  if (p.messageExpiryInterval !== undefined) out.messageExpiryInterval = p.messageExpiryInterval;
  if (p.contentType !== undefined) out.contentType = p.contentType;
  if (p.responseTopic !== undefined) out.responseTopic = p.responseTopic;
  if (p.correlationData !== undefined) out.correlationData = p.correlationData;
  if (p.userProperties !== undefined) {
    const list: UserProperty[] = [];
    for (const [k, v] of Object.entries(p.userProperties)) {
      if (Array.isArray(v)) for (const x of v) list.push([k, x]);
      else list.push([k, v]);
    }
    if (list.length > 0) out.userProperties = list;
  }
  return out;
}

export default definePlugin<IngressConfig>({
  name: 'bridge-ingress-mqtt',
  apiVersion: '^1.0.0',
  description: 'MQTT ingress bridge: messages from remote MQTT brokers published locally',
  configSchema,
  create(ctx) {
    const broker = ctx.broker;
    const metrics = broker.metrics;
    const logger = ctx.logger;
    let sources: Source[] = [];
    let running = false;
    const stats = { received: 0, routed: 0, failed: 0 };
    const failureLog = new LogThrottle();

    /** Publish one remote message here; resolves with the reason code for its PUBACK / PUBREC. */
    async function route(src: Source, packet: MqttPublishPacket): Promise<number> {
      src.received++;
      stats.received++;
      metrics.inc('bridge_ingress_mqtt.received');
      const e = src.entry;
      const topic = e.topic.hasPlaceholder ? e.topic.fill(skipLevels(packet.topic, e.skipLevels)) : e.topic.text;
      try {
        if (topic === '') throw new Error(`the local topic for "${packet.topic}" is empty`);
        const message: Message = broker.createMessage({
          topic,
          payload: packet.payload,
          qos: e.qos ?? packet.qos,
          retain: e.retain ?? packet.retain,
          properties: localProperties(packet.properties),
          expirySeconds: Math.ceil(src.bridge.expiryInterval / 1000),
          from: { type: 'bridge', clientId: src.link.clientId, username: src.bridge.username },
        });
        await broker.publish(message);
        stats.routed++;
        metrics.inc('bridge_ingress_mqtt.routed');
        return ReasonCode.Success;
      } catch (err) {
        stats.failed++;
        metrics.inc('bridge_ingress_mqtt.failed');
        const count = failureLog.hit();
        if (count > 0) logger.warn({ client_id: src.link.clientId, topic: packet.topic, error: (err as Error).message, failed: count }, 'bridged message could not be published here');
        return ReasonCode.ImplementationSpecificError;
      }
    }

    /** Subscribe (again) on the remote; a refusal is logged and tried again after reconnect_interval. */
    function subscribe(src: Source): void {
      // MQTT 5: Retain As Published, so the retain flag of a live message passes (3.1.1 clears it [MQTT-3.3.1-9])
      const options = src.bridge.mqttVer === 5 ? { qos: src.entry.remoteQos, rap: true } : { qos: src.entry.remoteQos };
      src.link.client.subscribe(src.entry.remoteFilter, options, (err, granted) => {
        const code = granted?.[0]?.qos;
        if (err === null && (code === undefined || code < 0x80)) {
          src.subscribed = true;
          return;
        }
        const detail = { ...(err !== null && err !== undefined ? { error: err.message } : {}), ...(code !== undefined ? { reason_code: code } : {}) };
        src.link.logger.warn({ client_id: src.link.clientId, filter: src.entry.remoteFilter, ...detail, retry_in_ms: src.bridge.reconnectInterval }, 'remote subscription refused or failed');
        clearTimeout(src.retry);
        src.retry = setTimeout(() => {
          if (src.link.connected && !src.closed) subscribe(src);
        }, src.bridge.reconnectInterval);
      });
    }

    function open(bridges: IngressBridge[]): Source[] {
      const out: Source[] = [];
      try {
        openInto(out, bridges);
      } catch (err) {
        // e.g. a TLS file that went away since the config was checked: close what was opened
        void close(out);
        throw err;
      }
      return out;
    }

    function openInto(out: Source[], bridges: IngressBridge[]): void {
      for (const bridge of bridges) {
        if (!bridge.enable) continue;
        const bridgeLogger = logger.child({ bridge: bridge.name, server: serverText(bridge.server) });
        bridge.entries.forEach((entry, index) => {
          // without $share every client would get every message: one client then
          const n = entry.shared ? bridge.concurrentClientLimit : 1;
          for (let i = 0; i < n; i++) {
            const clientId = bridgeClientId(bridge.clientIdPrefix, bridge.name, 'ingress', broker.nodeId, index, i);
            let src: Source;
            const options = {
              ...mqttClientOptions(bridge, clientId),
              customHandleAcks: (_topic: string, _payload: Buffer, packet: MqttPublishPacket, done: (code: number) => void): void => {
                if (packet.qos === 2 && packet.messageId !== undefined) {
                  if (src.awaitingRel.has(packet.messageId)) {
                    done(ReasonCode.Success);
                    return;
                  }
                }
                void route(src, packet).then((code) => {
                  if (code === ReasonCode.Success && packet.qos === 2 && packet.messageId !== undefined) src.awaitingRel.add(packet.messageId);
                  done(code);
                });
              },
            };
            const link = new BridgeLink(connect, options, bridgeLogger, {
              up: ({ sessionPresent }) => {
                // a session the remote kept still has the subscription (subscribing again would bring
                // its retained messages again)
                if (sessionPresent && src.subscribed) return;
                src.subscribed = false;
                subscribe(src);
              },
            });
            src = { bridge, index, entry, link, received: 0, awaitingRel: new Set(), subscribed: false, retry: undefined, closed: false };
            // QoS 0 (and before MQTT 5, QoS 1 before its PUBACK and QoS 2 at its PUBREL, before PUBCOMP)
            const v5 = bridge.mqttVer === 5;
            link.client.handleMessage = (packet, callback) => {
              if (packet.qos === 0 || !v5) void route(src, packet).then(() => callback());
              else callback();
            };
            link.client.on('packetreceive', (packet) => {
              if (packet.cmd === 'pubrel' && packet.messageId !== undefined) src.awaitingRel.delete(packet.messageId);
              else if (packet.cmd === 'connack' && (packet as { sessionPresent?: boolean }).sessionPresent !== true) src.awaitingRel.clear();
            });
            out.push(src);
          }
        });
      }
    }

    async function close(list: Source[]): Promise<void> {
      for (const s of list) {
        s.closed = true;
        clearTimeout(s.retry);
      }
      await Promise.all(list.map((s) => s.link.close()));
    }

    return {
      start() {
        const bridges = parseBridges(ctx.config.bridges);
        if (!bridges.some((b) => b.enable)) logger.info({ bridges: bridges.length }, 'no bridge is enabled (enable = true in a [[bridges]] table)');
        sources = open(bridges);
        running = true;
      },
      async stop() {
        running = false;
        const old = sources;
        sources = [];
        await close(old);
        return true;
      },
      async reload(next) {
        const bridges = parseBridges(next.bridges);
        const old = sources;
        sources = [];
        await close(old);
        if (running) sources = open(bridges);
      },
      attrs() {
        return {
          ...stats,
          bridges: sources.map((s) => ({
            name: s.bridge.name,
            entry_idx: s.index,
            client_id: s.link.clientId,
            server: serverText(s.bridge.server),
            remote_topic: s.entry.remoteFilter,
            connected: s.link.connected,
            subscribed: s.subscribed,
            received: s.received,
            connects: s.link.connects,
            failures: s.link.failures,
            last_error: s.link.lastError ?? null,
          })),
        };
      },
      async dispose() {
        running = false;
        const old = sources;
        sources = [];
        await close(old);
      },
    };
  },
});
