import 'reflect-metadata';

export { ReasonCode, ConnackReturnCode, connackCodeForV3, type ReasonCodeValue } from './reason-codes.js';
export {
  isValidTopicName,
  isValidTopicFilter,
  topicLevels,
  hasWildcard,
  topicMatches,
  filterCovers,
} from './topic.js';
export {
  withMessage,
  remainingExpirySeconds,
  type QoS,
  type ProtocolVersion,
  type UserProperty,
  type MessageOrigin,
  type MessageFrom,
  type MessageProperties,
  type Message,
  type SubscriptionOptions,
  type Subscription,
  type SocketAddress,
  type ConnectInfo,
  type WillInfo,
  type ClientInfo,
} from './message.js';
export {
  HOOKS,
  type HookKind,
  type MaybePromise,
  type HookDecision,
  type DisconnectReason,
  type DropReason,
  type AuthResult,
  type SubscribeAclResult,
  type PublishAclResult,
  type EnhancedAuthResult,
  type SubscribeRequest,
  type HookTypes,
  type HookName,
  type HookEvent,
  type HookResult,
  type ObserveHandler,
  type DecideHandler,
  type TransformHandler,
  type HookHandler,
  type HookOptions,
  type HookRegistrar,
} from './hooks.js';
export type {
  RetainStore,
  DeliverySnapshot,
  InflightSnapshot,
  SubscriptionSnapshot,
  SessionSnapshot,
  SessionChange,
  SessionStore,
  MessageStore,
  StoredMessage,
  RouteEntry,
  SharedGroupMatch,
  RouteMatch,
  Router,
  SharedStrategy,
  SharedSubscriptionPolicy,
  ClusterTransport,
  ExtensionTypes,
  ExtensionName,
  ExtensionRegistrar,
} from './extensions.js';
export type {
  Logger,
  DeadlineHandle,
  Scheduler,
  Metrics,
  ClientSummary,
  SubscriptionSummary,
  AdminPublish,
  PluginSummary,
  ControlApi,
  ClusterServices,
  BrokerServices,
} from './services.js';
export {
  PLUGIN_API_VERSION,
  PLUGIN_MARK,
  definePlugin,
  isPluginDefinition,
  type ConfigSchema,
  type PluginContext,
  type PluginInstance,
  type PluginDefinition,
  type AnyPluginDefinition,
} from './plugin.js';
export { ErrorCodes, RmqttError, isRmqttError, type ErrorCode } from './errors.js';
export { TOKENS, container, inject, injectable, singleton, type DependencyContainer } from './tokens.js';
export { rmqttTime, subscriptionOptionsJson } from './rmqtt-json.js';
export { DURATION_EXPECTED, DURATION_UNITS, SIZE_EXPECTED, SIZE_UNITS, parseDuration, parseSize, readDecimal, readWithUnit } from './units.js';
export { BRIDGE_EGRESS_MARKER, BRIDGE_INGRESS_MARKER, bridgeClientId, bridgeOrigin } from './bridge-origin.js';
