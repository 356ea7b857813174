export { Broker, createBroker, type BrokerOptions } from './broker.js';
export { VERSION } from './version.js';
export {
  loadBrokerConfig,
  loadBrokerConfigSync,
  loadPluginConfig,
  maskSecrets,
  maskBrokerConfig,
  registerFormats,
  type BrokerConfig,
  type ListenerConfig,
  type LoadOptions,
  type LoadedConfig,
} from './config/index.js';
export { Decoder, DecodeError, encode, encodePublishHeader } from './codec/index.js';
export type * from './codec/packets.js';
export { HookRegistry } from './hooks/registry.js';
export { DeadlineScheduler } from './time/scheduler.js';
export { BrokerMetrics, COUNTER_NAMES, GAUGE_NAMES } from './metrics/metrics.js';
export { TopicTrie, SharedSelector } from './router/index.js';
export { MemorySessionStore } from './extensions/memory-session-store.js';
export { PluginManager } from './plugins/manager.js';
export { parsePluginName, RMQTT_PLUGIN_NAMES } from './plugins/resolve.js';
