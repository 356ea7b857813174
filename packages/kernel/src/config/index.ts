/** Configuration: RMQTT-style TOML through convict, environment, flags, strict validation. */
export { loadBrokerConfig, loadBrokerConfigSync } from './load.js';
export { loadPluginConfig, pluginEnvPrefixes } from './plugin-config.js';
export type { PluginConfigOptions, PluginConfigResult } from './plugin-config.js';
export {
  Formats,
  registerFormats,
  intFormat,
  numberFormat,
  oneOfFormat,
  parseDuration,
  parseDurationSeconds,
  parseSize,
  parseRate,
  parseAddr,
  parseStringList,
  InvalidInput,
} from './formats.js';
export type { AddrValue, RateValue } from './formats.js';
export { maskSecrets, MASK } from './engine.js';
export { maskBrokerConfig } from './mask.js';
export { LISTENER_KEYS, LISTENER_TYPES, MAX_PACKET_SIZE } from './listener-schema.js';
export { UNIMPLEMENTED_KEYS } from './broker-schema.js';
export type { BrokerConfig, ListenerConfig, ListenerType, LogLevel, LogTarget, ClusterFlags, LoadOptions, LoadedConfig } from './types.js';
