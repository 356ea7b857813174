/**
 * Extension points: interfaces a plugin may implement and provide. A provided implementation is swapped
 * in when its plugin starts; the kernel restores its default when the plugin stops. Every
 * implementation must pass the conformance suite of the same name in `@rmqtt-ts/testkit`.
 */
import type { MaybePromise } from './hooks.js';
import type { ConnectInfo, Message, QoS, SubscriptionOptions } from './message.js';

/**
 * Retained messages by topic. Kernel default: none (the broker then announces Retain Available 0).
 * A store hides expired messages itself (`message.expiresAt`).
 */
export interface RetainStore {
  /** Store the retained message of `message.topic`, replacing any; false if the store refused it (full, too large). */
  set(message: Message): MaybePromise<boolean>;
  /** Remove the retained message of a topic; true if there was one. */
  delete(topic: string): MaybePromise<boolean>;
  get(topic: string): MaybePromise<Message | undefined>;
  /** Unexpired retained messages whose topic matches the filter (`$` topics follow [MQTT-4.7.2-1]). */
  match(filter: string): MaybePromise<Message[]>;
  /** Number of unexpired retained messages. */
  count(): MaybePromise<number>;
  /** Called when the provider stops; release resources. */
  close?(): MaybePromise<void>;
}

/** One message waiting in a session's queue or inflight window. */
export interface DeliverySnapshot {
  readonly message: Message;
  /** QoS of this delivery: min(published, granted). */
  readonly qos: QoS;
  /** RETAIN flag to send (retain-as-published or a retained message sent on subscribe). */
  readonly retain: boolean;
  readonly subscriptionIds: readonly number[];
}

export interface InflightSnapshot extends DeliverySnapshot {
  readonly packetId: number;
  /** 'publish': PUBLISH sent, waiting for PUBACK/PUBREC; 'pubrel': PUBREL sent, waiting for PUBCOMP. */
  readonly state: 'publish' | 'pubrel';
}

export interface SubscriptionSnapshot {
  /** The filter as subscribed, special prefixes included (e.g. `$share/g/a/#`). */
  readonly rawFilter: string;
  readonly options: SubscriptionOptions;
}

/** Everything needed to rebuild a session elsewhere or after a restart. */
export interface SessionSnapshot {
  readonly clientId: string;
  readonly node: number;
  readonly connectInfo: ConnectInfo;
  readonly createdAt: number;
  /** When the client went offline (ms since the epoch); undefined while connected. */
  readonly disconnectedAt: number | undefined;
  /** Session Expiry Interval in force (seconds; 0xFFFFFFFF never expires). */
  readonly expiryInterval: number;
  readonly subscriptions: readonly SubscriptionSnapshot[];
  readonly inflight: readonly InflightSnapshot[];
  readonly queued: readonly DeliverySnapshot[];
  /** Inbound QoS 2 packet ids that got PUBREC and wait for PUBREL. */
  readonly awaitingRel: readonly number[];
}

/** A change to persistent session state, written in batches. */
export type SessionChange =
  | { readonly op: 'put'; readonly session: SessionSnapshot }
  | { readonly op: 'remove'; readonly clientId: string }
  | { readonly op: 'subscribe'; readonly clientId: string; readonly subscription: SubscriptionSnapshot }
  | { readonly op: 'unsubscribe'; readonly clientId: string; readonly rawFilter: string }
  | { readonly op: 'offline'; readonly clientId: string; readonly at: number; readonly expiryInterval: number }
  | { readonly op: 'enqueue'; readonly clientId: string; readonly delivery: DeliverySnapshot }
  /** The oldest queued delivery left the queue without going inflight (sent at QoS 0, evicted or expired). */
  | { readonly op: 'dequeue'; readonly clientId: string }
  /** A delivery was sent: it leaves the front of the queue if it came from there, and waits for its ack. */
  | { readonly op: 'inflight'; readonly clientId: string; readonly delivery: InflightSnapshot; readonly fromQueue: boolean }
  | { readonly op: 'complete'; readonly clientId: string; readonly packetId: number }
  | { readonly op: 'awaitRel'; readonly clientId: string; readonly packetId: number; readonly pending: boolean };

/**
 * Persistent sessions (clean_session=0 / session expiry > 0). Kernel default: in memory (gone at exit).
 * `apply` resolves once the batch is durable; the kernel acknowledges QoS 1/2 messages to persistent
 * sessions only after that. The next batch may be handed over before the previous one is written: a
 * store applies batches in the order it gets them and settles their promises in that order. When
 * `apply` rejects (the backend is away), the store has still taken the changes and must write them
 * with its next call: the kernel hands nothing new and retries with an empty list until that
 * resolves, and never hands the same changes again.
 */
export interface SessionStore {
  /** Sessions saved earlier (to restore at start-up as offline sessions). */
  load(): MaybePromise<SessionSnapshot[]>;
  apply(changes: readonly SessionChange[]): MaybePromise<void>;
  close?(): MaybePromise<void>;
}

/** A stored message with who has had it. */
export interface StoredMessage {
  readonly message: Message;
  /** Client ids, and `$share/{group}/{filter}` for each shared-subscription group, that got it. */
  readonly recipients: ReadonlySet<string>;
}

/**
 * Published messages kept until they expire, for delivery to later subscribers (message storage).
 * Kernel default: none — a broker without the message-storage plugin keeps no history. Messages are
 * known by `from.node` and `id` together.
 */
export interface MessageStore {
  /**
   * Keep a published message until it expires, with the recipients routing gave it to: each session's
   * client id, and `$share/{group}/{filter}` for each shared group that took it.
   */
  store(message: Message, recipients: readonly string[]): MaybePromise<void>;
  /** Unexpired stored messages whose topic matches the filter, oldest first. */
  match(filter: string, now: number): MaybePromise<StoredMessage[]>;
  /** Record that a recipient (client id or shared group) got these messages. */
  markDelivered(recipient: string, messages: readonly Message[]): MaybePromise<void>;
  /** A session ended: its client id no longer counts as having had anything (a new session starts afresh). */
  forget(clientId: string): MaybePromise<void>;
  count(): MaybePromise<number>;
  close?(): MaybePromise<void>;
}

/** A route: a subscription of a session on this node, as the router holds it. */
export interface RouteEntry {
  readonly clientId: string;
  /** The filter without special prefixes. */
  readonly filter: string;
  readonly options: SubscriptionOptions;
  /** The kernel's handle on the session; opaque to plugins. */
  readonly target: unknown;
}

/** A shared-subscription group among the matches of a topic. */
export interface SharedGroupMatch {
  readonly group: string;
  readonly filter: string;
  readonly members: readonly RouteEntry[];
}

export interface RouteMatch {
  /** Non-shared subscriptions whose filter matches. */
  readonly direct: readonly RouteEntry[];
  readonly shared: readonly SharedGroupMatch[];
}

/**
 * The subscription table. Kernel default: a topic trie with a match cache invalidated on change.
 * `match` results may be cached and shared: callers must not change them.
 */
export interface Router {
  add(entry: RouteEntry): void;
  /** Remove a client's subscription to a filter (in a group, or not shared when group is undefined). */
  remove(clientId: string, filter: string, group: string | undefined): RouteEntry | undefined;
  match(topic: string): RouteMatch;
  /** Distinct filters with their subscriber counts. */
  routes(): Iterable<{ readonly filter: string; readonly count: number }>;
  /** Number of route entries. */
  readonly size: number;
}

/** How to choose one member of a shared-subscription group. */
export type SharedStrategy =
  | 'random'
  | 'round_robin'
  | 'round_robin_per_group'
  | 'sticky'
  | 'hash_clientid'
  | 'hash_topic'
  | 'local';

export interface SharedSubscriptionPolicy {
  readonly strategy: SharedStrategy;
  /** Entries kept by the `sticky` strategy (least recently used evicted). */
  readonly stickyCacheSize: number;
}

/**
 * Several nodes as one broker. Kernel default: local only (one node). A cluster plugin forwards
 * publishes to the nodes with matching subscribers and moves sessions between nodes; to hand work
 * back to the kernel it uses `BrokerServices.cluster`.
 */
export interface ClusterTransport {
  /** Called for every publish that passed the pipeline, after local routing. */
  forward(message: Message): MaybePromise<void>;
  /** The node holding a client id's session, if any. */
  locate(clientId: string): MaybePromise<number | undefined>;
  /** Serialise connects of one client id across the cluster; resolves with the unlock function. */
  lock(clientId: string): MaybePromise<() => void>;
  /** Take a session from another node (which kicks its client); resolves with its state. */
  takeover(clientId: string, fromNode: number): MaybePromise<SessionSnapshot | undefined>;
  /** A session now lives on this node. */
  register(clientId: string): MaybePromise<void>;
  /** The session on this node ended. */
  unregister(clientId: string): MaybePromise<void>;
  close?(): MaybePromise<void>;
}

/** The extension points by name, with the interface each expects. */
export interface ExtensionTypes {
  retainStore: RetainStore;
  sessionStore: SessionStore;
  messageStore: MessageStore;
  router: Router;
  clusterTransport: ClusterTransport;
  sharedSubscription: SharedSubscriptionPolicy;
}
export type ExtensionName = keyof ExtensionTypes;

export interface ExtensionRegistrar {
  /** Provide an implementation; it becomes active when the plugin starts and is withdrawn when it stops. */
  provide<N extends ExtensionName>(name: N, implementation: ExtensionTypes[N]): void;
}
