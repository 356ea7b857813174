/** What the kernel offers plugins: logging, time, metrics, and the control API. */
import type { MaybePromise } from './hooks.js';
import type { SessionSnapshot } from './extensions.js';
import type { Message, MessageProperties, ProtocolVersion, QoS } from './message.js';

/** pino-compatible logger. */
export interface Logger {
  trace(obj: unknown, msg?: string, ...args: unknown[]): void;
  debug(obj: unknown, msg?: string, ...args: unknown[]): void;
  info(obj: unknown, msg?: string, ...args: unknown[]): void;
  warn(obj: unknown, msg?: string, ...args: unknown[]): void;
  error(obj: unknown, msg?: string, ...args: unknown[]): void;
  fatal(obj: unknown, msg?: string, ...args: unknown[]): void;
  child(bindings: Record<string, unknown>): Logger;
}

export interface DeadlineHandle {
  readonly at: number;
}

/**
 * One deadline structure for the whole broker: session expiry, will delay, message expiry, retained TTL
 * and delayed publishes. Deadlines fire within a second of their time, whatever how far ahead they are.
 */
export interface Scheduler {
  /** Run `fn` at `at` (ms since the epoch). */
  at(at: number, fn: () => void): DeadlineHandle;
  cancel(handle: DeadlineHandle): void;
}

/** Counters and gauges with RMQTT's names (`client.connect`, `messages.publish`, ...). */
export interface Metrics {
  inc(name: string, by?: number): void;
  /** RMQTT's `/metrics` counters. */
  metrics(): Record<string, number>;
  /** RMQTT's `/stats` gauges (`X.count` / `X.max`). */
  stats(): Record<string, number>;
}

export interface ClientSummary {
  node: number;
  clientId: string;
  username: string | undefined;
  superuser: boolean;
  protoVer: ProtocolVersion;
  ipAddress: string | undefined;
  port: number | undefined;
  listener: string;
  connected: boolean;
  connectedAt: number;
  disconnectedAt: number | undefined;
  disconnectedReason: string | undefined;
  createdAt: number;
  keepalive: number;
  cleanStart: boolean;
  sessionPresent: boolean;
  expiryInterval: number;
  subscriptionsCount: number;
  subscriptionsMax: number;
  inflight: number;
  inflightMax: number;
  mqueueLen: number;
  mqueueMax: number;
  lastWill: { topic: string; qos: QoS; retain: boolean; payload: Buffer } | undefined;
  attributes: Record<string, unknown>;
}

export interface SubscriptionSummary {
  node: number;
  clientId: string;
  clientAddr: string | undefined;
  /** The filter as subscribed, special prefixes included. */
  topic: string;
  qos: QoS;
  share: string | undefined;
}

export interface AdminPublish {
  topic: string;
  payload: Buffer;
  qos?: QoS;
  retain?: boolean;
  properties?: MessageProperties;
  /** Publish as this client: its publish ACL applies. Without it, the publisher is "system". */
  clientId?: string;
  /** Message expiry when the properties carry none (seconds; 0 = never; unset = the listener's message_expiry_interval). */
  expirySeconds?: number;
}

export interface PluginSummary {
  name: string;
  packageName: string;
  version: string;
  description: string;
  state: 'registered' | 'inited' | 'started' | 'stopped' | 'disposed' | 'failed';
  inited: boolean;
  active: boolean;
  immutable: boolean;
  attrs: Record<string, unknown>;
}

/** The kernel control API, for the HTTP API plugin and other administrators. */
export interface ControlApi {
  clients(): ClientSummary[];
  client(clientId: string): ClientSummary | undefined;
  /** Disconnect a client (v5 DISCONNECT 0x98) and end its session. */
  kick(clientId: string): MaybePromise<boolean>;
  subscriptions(clientId?: string): SubscriptionSummary[];
  routes(): { topic: string; node: number; count: number }[];
  publish(input: AdminPublish): Promise<void>;
  /** Subscribe an online client (as if it sent SUBSCRIBE); resolves with the granted QoS or reason code. */
  subscribe(clientId: string, filter: string, qos: QoS): Promise<number>;
  unsubscribe(clientId: string, filter: string): Promise<boolean>;
  retained(filter: string): Promise<Message[]>;
  deleteRetained(topic: string): Promise<boolean>;
  plugins(): PluginSummary[];
  plugin(name: string): PluginSummary | undefined;
  startPlugin(name: string): Promise<void>;
  /** Resolves false when the plugin refused to stop. */
  stopPlugin(name: string): Promise<boolean>;
  /** Re-read and validate the plugin's config file, then apply it. */
  reloadPlugin(name: string): Promise<void>;
  /** The plugin's config in force, secrets masked. */
  pluginConfig(name: string): Record<string, unknown>;
}

/** Services for cluster transports: hand forwarded work back to the kernel. */
export interface ClusterServices {
  /** Deliver a message forwarded by another node to this node's matching subscribers. */
  deliverForwarded(message: Message): void;
  /** Give up a local session to another node: kick its client (0x8E) and return its state. */
  exportSession(clientId: string): MaybePromise<SessionSnapshot | undefined>;
}

export interface BrokerServices {
  readonly nodeId: number;
  readonly version: string;
  /** ms since the epoch. */
  readonly startedAt: number;
  readonly control: ControlApi;
  readonly metrics: Metrics;
  readonly scheduler: Scheduler;
  readonly cluster: ClusterServices;
  /** Make a message object as the kernel would for a publish (id, times, expiry). */
  createMessage(input: AdminPublish & { from?: Partial<Message['from']> }): Message;
  /**
   * Route a message made with createMessage as the broker's own (`$SYS` topics, bridges): no publish
   * ACL, the message.publish transform hooks run, retained when `retain` is set and a retain store is
   * present. Resolves with the number of sessions on this node that got it.
   */
  publish(message: Message): Promise<{ matched: number }>;
}
