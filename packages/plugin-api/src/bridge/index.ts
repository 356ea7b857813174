/**
 * `@rmqtt-ts/plugin-api/bridge` — what MQTT bridge plugins share: RMQTT's `[[bridges]]` connection keys
 * read and checked, mqtt.js client options made from them, a client that reconnects and reports, and
 * topic mapping (templates, skipped levels). The MQTT client itself (mqtt.js) is handed in by the plugin.
 */
export { TableReader, expandEnv } from './reader.js';
export { mqttClientOptions, parseBridgeList, parseConnection, serverText, type BridgeConnection, type LastWill, type MqttClientOptions, type ServerAddress } from './connection.js';
export { BridgeLink, LogThrottle, type AckHandler, type MqttConnect, type MqttLikeClient, type MqttPublishOptions, type MqttPublishPacket } from './client.js';
export { skipLevels, topicTemplate, type TopicTemplate } from './topics.js';
export { BRIDGE_EGRESS_MARKER, BRIDGE_INGRESS_MARKER, bridgeClientId, bridgeOrigin } from '../bridge-origin.js';
