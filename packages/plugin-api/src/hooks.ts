/**
 * The typed hooks (RMQTT's set). Three kinds:
 * - observe: every handler runs; a failing handler is logged against its plugin and the rest go on.
 * - decide: a result is folded through the handlers (`acc`); a handler may pass (return undefined),
 *   set the result and go on (`{ result, proceed: true }`) or end the chain (`{ result, proceed: false }`).
 *   Authentication and ACL fail closed: a handler that throws counts as a denial.
 * - transform: a handler returns the value (or a replacement) to pass on, or `null` to drop it.
 * Higher priority runs first; equal priorities run in registration order. Hooks marked `sync` run on
 * the per-delivery path and must not return promises.
 */
import type {
  ClientInfo,
  ConnectInfo,
  Message,
  QoS,
  Subscription,
  SubscriptionOptions,
} from './message.js';

export type HookKind = 'observe' | 'decide' | 'transform';

export type MaybePromise<T> = T | Promise<T>;

/** A decide handler's answer. */
export interface HookDecision<R> {
  result: R;
  /** false ends the chain with this result. */
  proceed: boolean;
}

/** Why a connection ended. */
export interface DisconnectReason {
  /** MQTT 5 reason code (sent or received). */
  readonly code: number;
  /** Who ended it: the client (DISCONNECT or socket close), the server, or a takeover. */
  readonly by: 'client' | 'server';
  readonly message: string;
}

/** Why a message was not delivered to a client. */
export type DropReason =
  | 'queue_full'
  | 'expired'
  | 'packet_too_large'
  | 'no_local'
  | 'acl_denied'
  | 'session_terminated'
  | 'rejected'
  | 'slow_consumer'
  | 'delayed_limit';

export interface AuthResult {
  result: 'allow' | 'deny';
  /** Superusers skip the ACL hooks. */
  superuser?: boolean;
  /** CONNACK reason code for a denial (default 0x86 Bad User Name or Password). */
  reasonCode?: number;
  /** Attributes to attach to the client (see ClientInfo.attributes). */
  attributes?: Record<string, unknown>;
}

export interface SubscribeAclResult {
  allow: boolean;
  /** Cap on the granted QoS. */
  qos?: QoS;
  /** SUBACK reason code for a denial (default 0x87 Not Authorized, v3 0x80). */
  reasonCode?: number;
  /**
   * For a granted filter that overlaps denied topics (`#` beside a deny on `secret/#`): the kernel
   * delivers a matching message — retained ones included — only when this returns true for its topic.
   */
  deliverIf?: (topic: string) => boolean;
}

export interface PublishAclResult {
  allow: boolean;
  /** Close the connection after a denial instead of answering with a reason code. */
  disconnect?: boolean;
  /** PUBACK/PUBREC reason code for a denial (default 0x87 Not Authorized). */
  reasonCode?: number;
}

export interface EnhancedAuthResult {
  /** 0x00 success, 0x18 continue authentication, or a failure code (0x80+). */
  reasonCode: number;
  data?: Buffer;
  superuser?: boolean;
}

export interface SubscribeRequest {
  /** The filter as the client sent it (special prefixes included). */
  readonly filter: string;
  readonly options: SubscriptionOptions;
}

/** Each hook: its kind, its event, its result or transformed value, and whether it must be synchronous. */
export interface HookTypes {
  'client.connect': { kind: 'observe'; sync: false; event: { readonly connectInfo: ConnectInfo }; result: void };
  'client.authenticate': {
    kind: 'decide';
    sync: false;
    event: { readonly connectInfo: ConnectInfo };
    result: AuthResult;
  };
  'client.connack': {
    kind: 'observe';
    sync: false;
    event: { readonly connectInfo: ConnectInfo; readonly reasonCode: number; readonly sessionPresent: boolean };
    result: void;
  };
  'client.connected': {
    kind: 'observe';
    sync: false;
    event: { readonly client: ClientInfo; readonly sessionPresent: boolean };
    result: void;
  };
  'client.disconnected': {
    kind: 'observe';
    sync: false;
    event: { readonly client: ClientInfo; readonly reason: DisconnectReason };
    result: void;
  };
  'client.subscribe': { kind: 'transform'; sync: false; event: { readonly client: ClientInfo }; result: SubscribeRequest };
  'client.unsubscribe': { kind: 'transform'; sync: false; event: { readonly client: ClientInfo }; result: string };
  'client.subscribeCheckAcl': {
    kind: 'decide';
    sync: false;
    event: { readonly client: ClientInfo; readonly filter: string; readonly options: SubscriptionOptions };
    result: SubscribeAclResult;
  };
  'message.publishCheckAcl': {
    kind: 'decide';
    sync: false;
    /** `client` is undefined for a publish from the HTTP API without a client id. */
    event: { readonly client: ClientInfo | undefined; readonly message: Message };
    result: PublishAclResult;
  };
  'message.publish': {
    kind: 'transform';
    sync: false;
    event: { readonly client: ClientInfo | undefined };
    result: Message;
  };
  'message.delivered': {
    kind: 'observe';
    sync: true;
    event: { readonly client: ClientInfo; readonly message: Message; readonly qos: QoS };
    result: void;
  };
  'message.acked': {
    kind: 'observe';
    sync: true;
    event: { readonly client: ClientInfo; readonly message: Message };
    result: void;
  };
  'message.dropped': {
    kind: 'observe';
    sync: true;
    event: { readonly clientId: string | undefined; readonly message: Message; readonly reason: DropReason };
    result: void;
  };
  'message.nonsubscribed': { kind: 'observe'; sync: true; event: { readonly message: Message }; result: void };
  'message.expiryCheck': {
    kind: 'decide';
    sync: true;
    event: { readonly clientId: string; readonly message: Message; readonly now: number };
    /** true: treat the message as expired. */
    result: boolean;
  };
  'session.created': { kind: 'observe'; sync: false; event: { readonly client: ClientInfo }; result: void };
  'session.terminated': {
    kind: 'observe';
    sync: false;
    event: { readonly client: ClientInfo; readonly reason: string };
    result: void;
  };
  'session.subscribed': {
    kind: 'observe';
    sync: false;
    event: { readonly client: ClientInfo; readonly subscription: Subscription };
    result: void;
  };
  'session.unsubscribed': {
    kind: 'observe';
    sync: false;
    event: { readonly client: ClientInfo; readonly filter: string };
    result: void;
  };
  'offline.message': {
    kind: 'observe';
    sync: true;
    event: { readonly clientId: string; readonly message: Message };
    result: void;
  };
  'client.keepalive': {
    kind: 'observe';
    sync: true;
    event: { readonly client: ClientInfo; readonly isPing: boolean };
    result: void;
  };
  'client.enhancedAuth': {
    kind: 'decide';
    sync: false;
    event: {
      readonly connectInfo: ConnectInfo;
      readonly method: string;
      readonly data: Buffer | undefined;
      /** True for re-authentication after CONNACK. */
      readonly reauthenticate: boolean;
    };
    result: EnhancedAuthResult;
  };
}

export type HookName = keyof HookTypes;
export type HookEvent<N extends HookName> = HookTypes[N]['event'];
export type HookResult<N extends HookName> = HookTypes[N]['result'];

type Ret<N extends HookName, T> = HookTypes[N]['sync'] extends true ? T : MaybePromise<T>;

export type ObserveHandler<N extends HookName> = (event: HookEvent<N>) => Ret<N, void>;
export type DecideHandler<N extends HookName> = (
  event: HookEvent<N>,
  acc: HookResult<N> | undefined,
) => Ret<N, HookDecision<HookResult<N>> | undefined>;
export type TransformHandler<N extends HookName> = (
  value: HookResult<N>,
  event: HookEvent<N>,
) => Ret<N, HookResult<N> | null>;

export type HookHandler<N extends HookName> = HookTypes[N]['kind'] extends 'observe'
  ? ObserveHandler<N>
  : HookTypes[N]['kind'] extends 'decide'
    ? DecideHandler<N>
    : TransformHandler<N>;

/** The kind of each hook and whether its handlers must be synchronous, at run time. */
export const HOOKS: { readonly [N in HookName]: { readonly kind: HookTypes[N]['kind']; readonly sync: boolean } } = {
  'client.connect': { kind: 'observe', sync: false },
  'client.authenticate': { kind: 'decide', sync: false },
  'client.connack': { kind: 'observe', sync: false },
  'client.connected': { kind: 'observe', sync: false },
  'client.disconnected': { kind: 'observe', sync: false },
  'client.subscribe': { kind: 'transform', sync: false },
  'client.unsubscribe': { kind: 'transform', sync: false },
  'client.subscribeCheckAcl': { kind: 'decide', sync: false },
  'message.publishCheckAcl': { kind: 'decide', sync: false },
  'message.publish': { kind: 'transform', sync: false },
  'message.delivered': { kind: 'observe', sync: true },
  'message.acked': { kind: 'observe', sync: true },
  'message.dropped': { kind: 'observe', sync: true },
  'message.nonsubscribed': { kind: 'observe', sync: true },
  'message.expiryCheck': { kind: 'decide', sync: true },
  'session.created': { kind: 'observe', sync: false },
  'session.terminated': { kind: 'observe', sync: false },
  'session.subscribed': { kind: 'observe', sync: false },
  'session.unsubscribed': { kind: 'observe', sync: false },
  'offline.message': { kind: 'observe', sync: true },
  'client.keepalive': { kind: 'observe', sync: true },
  'client.enhancedAuth': { kind: 'decide', sync: false },
};

export interface HookOptions {
  /** Higher runs first; default 0. Ties run in registration order. */
  priority?: number;
}

/** What a plugin uses to register its handlers (at init; they are enabled by start). */
export interface HookRegistrar {
  on<N extends HookName>(name: N, handler: HookHandler<N>, options?: HookOptions): void;
}
