export { capturingLogger, startBroker, testLogger, type TestBroker, type TestBrokerOptions } from './broker.js';
export { RawClient, RawClientPool, RawServer, type RawConnectOptions, type PacketOf } from './raw-client.js';
export { connectTracked, connectAccepted, poolForTest, uniqueId, ping, subscribeGranted, publishDone, publishPacket, denyPublishTo, type PublishOptions } from './helpers.js';
export { connectClient, recorder, endClient, subscribe, type Received } from './mqtt-clients.js';
export { describeRetainStore, retainedMessage, type RetainStoreFactory } from './conformance/retain-store.js';
export { describeSessionStore, sessionSnapshot, storedMessage, type SessionStoreFactory, type SessionStoreHandle } from './conformance/session-store.js';
/** The kernel's deadline scheduler, for extension-point implementations under test (e.g. a RetainStore's TTL). */
export { DeadlineScheduler } from '@rmqtt-ts/kernel';
export type { Packet, ProtocolVersion as MqttVersion } from '@rmqtt-ts/kernel';
export { freePort, waitForPort } from './services/net.js';
export { startRedis, startRedisCluster, type RedisCluster, type RedisServer } from './services/redis.js';
export { startMosquitto, type MosquittoOptions, type MosquittoServer } from './services/mosquitto.js';
export { makePki, type Pki } from './services/pki.js';
export { describeMessageStore, type MessageStoreFactory, type MessageStoreHandle } from './conformance/message-store.js';
export { bridgeTable, tomlArrayTable, useTestScope, type TestScope } from './scope.js';
