/**
 * A session: what outlives a connection (subscriptions, queued and inflight messages, inbound QoS 2
 * state, the pending will) and the client identity plugins see.
 */
import type {
  ClientInfo,
  ConnectInfo,
  DeadlineHandle,
  RouteEntry,
  SessionSnapshot,
  SubscriptionOptions,
  WillInfo,
} from '@rmqtt-ts/plugin-api';
import { bridgeOrigin } from '@rmqtt-ts/plugin-api';
import type { ListenerConfig } from '../config/index.js';
import type { Connection } from '../connection/connection.js';
import { Outbound } from '../delivery/outbound.js';
import type { Kernel } from '../kernel.js';

export class SessionSubscription {
  constructor(
    /** As the client sent it, special prefixes included. */
    readonly rawFilter: string,
    readonly route: RouteEntry,
    /** From the ACL: deliver only topics for which this holds. */
    readonly deliverIf: ((topic: string) => boolean) | undefined,
  ) {}
  get filter(): string {
    return this.route.filter;
  }
  get options(): SubscriptionOptions {
    return this.route.options;
  }
}

const EMPTY_MAP: ReadonlyMap<string, never> = new Map<string, never>();
const EMPTY_SET: ReadonlySet<number> = new Set<number>();

/** The ClientInfo view of a session handed to hooks; reads the live session. */
class SessionClientInfo implements ClientInfo {
  readonly #s: Session;
  constructor(s: Session) {
    this.#s = s;
  }
  get clientId(): string {
    return this.#s.clientId;
  }
  get username(): string | undefined {
    return this.#s.connectInfo.username;
  }
  get connectInfo(): ConnectInfo {
    return this.#s.connectInfo;
  }
  get superuser(): boolean {
    return this.#s.superuser;
  }
  get connected(): boolean {
    return this.#s.conn !== null;
  }
  get connectedAt(): number {
    return this.#s.connectedAt;
  }
  get attributes(): ReadonlyMap<string, unknown> {
    return this.#s.attributes;
  }
}

export class Session {
  readonly clientId: string;
  readonly createdAt: number;
  readonly info: ClientInfo;
  readonly out: Outbound;
  connectInfo: ConnectInfo;
  listener: ListenerConfig;
  superuser = false;
  conn: Connection | null = null;
  connectedAt = 0;
  /** Session Present of the last CONNACK: the session existed before the client's last connect. */
  sessionPresent = false;
  /** Session Expiry Interval in force, seconds (NEVER_EXPIRES = never). */
  expiryInterval: number;
  // Collections most idle connections never use are made on first write: thousands of idle clients
  // would otherwise each hold empty hash tables.
  #subscriptions: Map<string, SessionSubscription> | null = null;
  #awaitingRel: Set<number> | null = null;
  #attributes: Map<string, unknown> | null = null;
  disconnectedAt: number | undefined;
  disconnectReason: string | undefined;
  expiryDeadline: DeadlineHandle | undefined;
  /** A will waiting for its delay (or the session end) after an abnormal disconnect. */
  pendingWill: WillInfo | undefined;
  willDeadline: DeadlineHandle | undefined;
  terminated = false;
  /** Written to the SessionStore at least once (so its end must be written too). */
  journaled = false;
  /** Scratch for merging overlapping subscriptions while one message is routed (see publish/dispatch). */
  routeMark = 0;
  routeQos: 0 | 1 | 2 = 0;
  routeRetain = false;
  routeSubIds: number[] | undefined = undefined;
  /** An egress bridge's client (bridge origin): what it publishes enters as a bridged message. */
  readonly bridgeEgress: boolean;
  /** An ingress bridge's client (bridge origin): bridged messages are not delivered to it. */
  readonly bridgeIngress: boolean;

  constructor(kernel: Kernel, connectInfo: ConnectInfo, listener: ListenerConfig, expiryInterval: number, now: number) {
    this.clientId = connectInfo.clientId;
    const origin = bridgeOrigin(connectInfo.clientId);
    this.bridgeEgress = origin === 'egress';
    this.bridgeIngress = origin === 'ingress';
    this.connectInfo = connectInfo;
    this.listener = listener;
    this.expiryInterval = expiryInterval;
    this.createdAt = now;
    this.info = new SessionClientInfo(this);
    this.out = new Outbound(this, kernel);
  }

  /** Subscriptions by the filter the client used (read-only view; see setSubscription). */
  get subscriptions(): ReadonlyMap<string, SessionSubscription> {
    return this.#subscriptions ?? EMPTY_MAP;
  }
  setSubscription(raw: string, sub: SessionSubscription): void {
    (this.#subscriptions ??= new Map()).set(raw, sub);
  }
  deleteSubscription(raw: string): boolean {
    return this.#subscriptions?.delete(raw) ?? false;
  }
  clearSubscriptions(): void {
    this.#subscriptions = null;
  }

  /** Inbound QoS 2 packet ids answered with PUBREC, waiting for PUBREL [MQTT-4.3.3-10]. */
  get awaitingRel(): ReadonlySet<number> {
    return this.#awaitingRel ?? EMPTY_SET;
  }
  addAwaitingRel(packetId: number): void {
    (this.#awaitingRel ??= new Set()).add(packetId);
  }
  deleteAwaitingRel(packetId: number): boolean {
    return this.#awaitingRel?.delete(packetId) ?? false;
  }
  clearAwaitingRel(): void {
    this.#awaitingRel = null;
  }

  /** Attributes plugins attached at authentication. */
  get attributes(): ReadonlyMap<string, unknown> {
    return this.#attributes ?? EMPTY_MAP;
  }
  setAttribute(key: string, value: unknown): void {
    (this.#attributes ??= new Map()).set(key, value);
  }

  /** Persistent: state is kept after disconnect (and written to the SessionStore). */
  get persistent(): boolean {
    return this.expiryInterval > 0;
  }

  snapshot(node: number): SessionSnapshot {
    // the password is not part of a session: it is never written to a store
    const connectInfo = this.connectInfo.password === undefined ? this.connectInfo : { ...this.connectInfo, password: undefined };
    return {
      clientId: this.clientId,
      node,
      connectInfo,
      createdAt: this.createdAt,
      disconnectedAt: this.disconnectedAt,
      expiryInterval: this.expiryInterval,
      subscriptions: [...this.subscriptions.values()].map((s) => ({ rawFilter: s.rawFilter, options: s.options })),
      inflight: this.out.inflightSnapshot(),
      queued: this.out.queueSnapshot(),
      awaitingRel: [...this.awaitingRel],
    };
  }
}
