/** The typed broker configuration, values already in the units their names say. */
import type { AddrValue, RateValue } from './formats.js';

export type ListenerType = 'tcp' | 'tls' | 'ws' | 'wss';
export type LogTarget = 'off' | 'file' | 'console' | 'both';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

export interface ListenerConfig {
  /** "tcp.external" */
  name: string;
  type: ListenerType;
  enable: boolean;
  addr: AddrValue;
  maxConnections: number;
  maxHandshakingLimit: number;
  handshakeTimeoutMs: number;
  /** Bytes; 0 in the file (unlimited) is stored as 268435460, the largest MQTT packet. */
  maxPacketSize: number;
  backlog: number;
  nodelay: boolean;
  tcpKeepalive: boolean;
  allowAnonymous: boolean;
  minKeepalive: number;
  maxKeepalive: number;
  allowZeroKeepalive: boolean;
  /** In (0.5, 1]. */
  keepaliveBackoff: number;
  /** 1..65535 */
  maxInflight: number;
  maxMqueueLen: number;
  mqueueRateLimit: RateValue | null;
  maxClientidLen: number;
  maxQosAllowed: 0 | 1 | 2;
  maxTopicLevels: number;
  sessionExpiryIntervalS: number;
  /** 0 = no cap */
  maxSessionExpiryIntervalS: number;
  /** 0 = no resend */
  messageRetryIntervalMs: number;
  /** 0 = never */
  messageExpiryIntervalS: number;
  maxSubscriptions: number;
  maxTopicAliases: number;
  /** 0 = unlimited */
  maxAwaitingRel: number;
  limitSubscription: boolean;
  delayedPublish: boolean;
  proxyProtocol: boolean;
  proxyProtocolTimeoutMs: number;
  /** New connections per second, 0 = off. */
  maxConnRate: number;
  maxMessageRate: RateValue | null;
  maxByteRate: RateValue | null;
  // TLS / WSS
  cert?: string;
  key?: string;
  crossCertificate: boolean;
  clientCaCerts?: string;
  certCnAsUsername: boolean;
  // WS / WSS
  /** undefined = any path */
  wsPath?: string;
}

export interface ClusterFlags {
  nodeGrpcAddrs: string[];
  raftPeerAddrs: string[];
  raftLeaderId: number;
}

export interface BrokerConfig {
  node: { id: number; cookie: string };
  log: { to: LogTarget; level: LogLevel; dir: string; file: string };
  plugins: { dir: string; defaultStartups: string[]; disabledDefaultStartups: string[] };
  mqtt: { delayedPublishMax: number; delayedPublishImmediate: boolean; maxSessions: number };
  /** Enabled and disabled ones (the enable flag kept), in file order. */
  listeners: ListenerConfig[];
  /** From command-line flags only for now. */
  cluster: ClusterFlags;
}

export interface LoadOptions {
  /** -f path(s), relative to cwd; several apply in order, a later file winning. Absent: schema defaults only. */
  file?: string | readonly string[];
  /** Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Command-line flags, highest precedence. */
  overrides?: {
    /** --id; overrides node.id when > 0, as RMQTT. */
    nodeId?: number;
    /** --plugins-default-startups a b */
    defaultStartups?: string[];
    /** --node-grpc-addrs "1@host:5363" … */
    nodeGrpcAddrs?: string[];
    /** --raft-peer-addrs "1@host:6003" … */
    raftPeerAddrs?: string[];
    /** --raft-leader-id */
    raftLeaderId?: number;
  };
  /** Dotted-key values applied after env, before flags ('listener.tcp.external.addr': '127.0.0.1:0'). */
  values?: Record<string, unknown>;
  cwd?: string;
}

export interface LoadedConfig {
  config: BrokerConfig;
  /** Lines for the caller to log. */
  warnings: string[];
  /** Absolute path of the (last) file read, if any. */
  file: string | undefined;
  /** Absolute paths of every file read, in order. */
  files: string[];
  /** The validated settings under RMQTT's key names (convict getProperties()); mask with maskSecrets(properties, schema). */
  properties: Record<string, unknown>;
  /** The convict schema these were validated against (listener subtrees included). */
  schema: Record<string, unknown>;
}
