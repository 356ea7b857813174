/** Messages, clients and subscriptions as plugins see them. */

export type QoS = 0 | 1 | 2;
export type ProtocolVersion = 3 | 4 | 5;

/** One MQTT 5 user property; a list of them keeps order and duplicates. */
export type UserProperty = [name: string, value: string];

/** Where a message came from (RMQTT's `From`). */
export type MessageOrigin = 'custom' | 'admin' | 'system' | 'lastwill' | 'bridge' | 'retain';

export interface MessageFrom {
  readonly type: MessageOrigin;
  /** Node the message entered the broker on. */
  readonly node: number;
  readonly clientId: string;
  readonly username: string | undefined;
  /** Peer IP address of a client publisher (normalised, no `::ffff:` prefix). */
  readonly ip: string | undefined;
}

/** Application properties of an MQTT 5 message; they pass end to end unchanged. */
export interface MessageProperties {
  payloadFormatIndicator?: number;
  /**
   * Message Expiry Interval as the publisher sent it (seconds). Present only when the publisher set it;
   * outgoing PUBLISHes then carry the remaining time [MQTT-3.3.2-6].
   */
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  userProperties?: UserProperty[];
}

/**
 * A message inside the broker. Treat it as immutable: a transform hook returns a new object (see
 * `withMessage`) instead of changing this one, since it may be shared by many deliveries.
 */
export interface Message {
  /** Unique on its node (with `from.node`, unique in a cluster). */
  readonly id: number;
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly properties: MessageProperties;
  readonly from: MessageFrom;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  /** When the broker drops the message (ms since the epoch); 0 = never. */
  readonly expiresAt: number;
}

/** A copy of a message with some fields replaced. */
export function withMessage(message: Message, changes: Partial<Omit<Message, 'id' | 'from' | 'createdAt'>>): Message {
  return { ...message, ...changes };
}

/** Seconds left before a message expires (at least 1 while it lives); undefined if it never expires. */
export function remainingExpirySeconds(message: Message, now: number): number | undefined {
  if (message.expiresAt === 0) return undefined;
  return Math.max(1, Math.ceil((message.expiresAt - now) / 1000));
}

/** Subscription options (MQTT 5 section 3.8.3.1) plus the broker's own special forms. */
export interface SubscriptionOptions {
  readonly qos: QoS;
  readonly noLocal: boolean;
  readonly retainAsPublished: boolean;
  readonly retainHandling: 0 | 1 | 2;
  /** MQTT 5 Subscription Identifier, if the SUBSCRIBE carried one. */
  readonly subscriptionId: number | undefined;
  /** Group name of a `$share/{group}/{filter}` subscription. */
  readonly shareGroup: string | undefined;
  /** n of a `$limit/{n}/{filter}` (1 for `$exclusive/`); undefined otherwise. */
  readonly limit: number | undefined;
}

/** A client's subscription: the filter (without `$share/g/`, `$limit/n/`, `$exclusive/`) and options. */
export interface Subscription {
  readonly clientId: string;
  readonly filter: string;
  readonly options: SubscriptionOptions;
}

export interface SocketAddress {
  /** Normalised: an IPv4-mapped IPv6 address is given as plain IPv4. */
  readonly ip: string;
  readonly port: number;
}

/** What a client told the broker in CONNECT, and where it came from. */
export interface ConnectInfo {
  readonly node: number;
  /** Listener name as in the config, e.g. `tcp.external`, `ws.internal`. */
  readonly listener: string;
  readonly remoteAddr: SocketAddress;
  readonly localAddr: SocketAddress;
  readonly clientId: string;
  /** True when the broker generated the id (empty client id with clean start). */
  readonly clientIdAssigned: boolean;
  readonly username: string | undefined;
  readonly password: Buffer | undefined;
  readonly protoVer: ProtocolVersion;
  readonly protoName: string;
  readonly keepalive: number;
  readonly cleanStart: boolean;
  /** Session Expiry Interval requested (v5) or implied (v3: 0 for clean, listener default otherwise). */
  readonly sessionExpiryInterval: number;
  readonly will: WillInfo | undefined;
  /** CONNECT user properties (v5). */
  readonly userProperties: readonly UserProperty[];
  /** Certificate common name of a mutual-TLS client. */
  readonly certCommonName: string | undefined;
}

export interface WillInfo {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly delayInterval: number;
  readonly properties: MessageProperties;
}

/** A connected or offline client as plugins see it. */
export interface ClientInfo {
  readonly clientId: string;
  readonly username: string | undefined;
  readonly connectInfo: ConnectInfo;
  /** Set by an authentication hook. Superusers skip the ACL hooks. */
  readonly superuser: boolean;
  readonly connected: boolean;
  readonly connectedAt: number;
  /** Free-form attributes that plugins may attach at authentication (JSON-serialisable). */
  readonly attributes: ReadonlyMap<string, unknown>;
}
