/**
 * The connection half of an MQTT bridge (RMQTT's `[[bridges]]` keys shared by egress and ingress):
 * server, TLS files, credentials, protocol version and its options, last will, client limits and
 * timers; and the mqtt.js client options made from it.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import type { QoS } from '../message.js';
import { TableReader } from './reader.js';

export interface LastWill {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  /** MQTT 5 only. Seconds. */
  delayInterval?: number;
  /** MQTT 5 only. Seconds. */
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
}

export interface ServerAddress {
  tls: boolean;
  host: string;
  port: number;
}

export interface BridgeConnection {
  enable: boolean;
  name: string;
  clientIdPrefix: string;
  server: ServerAddress;
  /** Resolved paths. */
  rootCert: string | undefined;
  clientCert: string | undefined;
  clientKey: string | undefined;
  username: string | undefined;
  password: string | undefined;
  concurrentClientLimit: number;
  /** ms */
  connectTimeout: number;
  /** seconds */
  keepalive: number;
  /** ms */
  reconnectInterval: number;
  /** 3 (MQTT 3.1), 4 (3.1.1) or 5. */
  mqttVer: 3 | 4 | 5;
  cleanStart: boolean;
  /** MQTT 5: seconds. */
  sessionExpiryInterval: number;
  receiveMaximum: number;
  maximumPacketSize: number;
  topicAliasMaximum: number;
  lastWill: LastWill | undefined;
}

function parseServer(r: TableReader): ServerAddress {
  const text = r.string('server');
  const expected = 'an address such as "tcp://127.0.0.1:1883" or "tls://broker.example.com:8883"';
  if (text === undefined || text.trim() === '') r.fail('server', expected, text);
  const t = text.trim();
  const m = /^(?:([a-z]+):\/\/)?(?:\[([^\]]+)\]|([^:/[\]]+))(?::(\d{1,5}))?\/?$/i.exec(t);
  const scheme = (m?.[1] ?? 'tcp').toLowerCase();
  if (m === null || (scheme !== 'tcp' && scheme !== 'tls')) r.fail('server', expected, text);
  const host = m[2] ?? m[3]!;
  if (m[2] !== undefined && isIP(host) !== 6) r.fail('server', expected, text);
  const tls = scheme === 'tls';
  const port = m[4] === undefined ? (tls ? 8883 : 1883) : Number(m[4]);
  if (port < 1 || port > 65535) r.fail('server', `${expected} (port 1 to 65535)`, text);
  return { tls, host, port };
}

function readableFile(r: TableReader, key: string, cwd: string): string | undefined {
  const v = r.string(key);
  if (v === undefined || v === '') return undefined;
  const path = resolve(cwd, v);
  try {
    accessSync(path, constants.R_OK);
  } catch {
    throw new Error(`${r.at(key)}: cannot read "${path}"`);
  }
  return path;
}

function parseLastWill(r: TableReader | undefined, v5: boolean): LastWill | undefined {
  if (r === undefined) return undefined;
  const topic = r.topicTemplate('topic', []);
  const encoding = r.oneOf('encoding', ['plain', 'base64'] as const, 'plain');
  const message = r.string('message', '');
  let payload: Buffer;
  if (encoding === 'base64') {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(message) || message.length % 4 !== 0) r.fail('message', 'base64 text (encoding = "base64")', message);
    payload = Buffer.from(message, 'base64');
  } else {
    payload = Buffer.from(message, 'utf8');
  }
  const will: LastWill = { topic, payload, qos: r.qos('qos', 0), retain: r.bool('retain', false) };
  if (v5) {
    if (r.has('will_delay_interval')) will.delayInterval = Math.floor(r.duration('will_delay_interval', 0) / 1000);
    if (r.has('message_expiry_interval')) {
      const s = Math.floor(r.duration('message_expiry_interval', 0) / 1000);
      if (s > 0) will.messageExpiryInterval = s;
    }
    const contentType = r.string('content_type');
    if (contentType !== undefined) will.contentType = contentType;
    const responseTopic = r.string('response_topic');
    if (responseTopic !== undefined) will.responseTopic = responseTopic;
    const correlation = r.string('correlation_data');
    if (correlation !== undefined) will.correlationData = Buffer.from(correlation, 'utf8');
  }
  r.done();
  return will;
}

/** Read the connection keys of one `[[bridges]]` table (the caller reads its own keys and calls `done`). */
export function parseConnection(r: TableReader, cwd: string): BridgeConnection {
  const name = r.string('name', '');
  const enable = r.bool('enable', false);
  if (enable && name.trim() === '') r.fail('name', 'a bridge name', name);
  const verText = r.oneOf('mqtt_ver', ['v3', 'v4', 'v5', 'V3', 'V4', 'V5'] as const, 'v4');
  const mqttVer = Number(verText.slice(1)) as 3 | 4 | 5;
  const v4 = r.table('v4');
  const v5 = r.table('v5');
  const conn: BridgeConnection = {
    enable,
    name,
    clientIdPrefix: r.string('client_id_prefix', ''),
    server: parseServer(r),
    rootCert: readableFile(r, 'root_cert', cwd),
    clientCert: readableFile(r, 'client_cert', cwd),
    clientKey: readableFile(r, 'client_key', cwd),
    username: r.secret('username'),
    password: r.secret('password'),
    concurrentClientLimit: r.int('concurrent_client_limit', 1, 1000, 1),
    // 0 would mean "no timeout" or "never reconnect" to mqtt.js: a bridge always retries
    connectTimeout: r.duration('connect_timeout', 20_000, 1),
    keepalive: Math.floor(r.duration('keepalive', 60_000) / 1000),
    reconnectInterval: r.duration('reconnect_interval', 5_000, 1),
    mqttVer,
    cleanStart: true,
    sessionExpiryInterval: 0,
    receiveMaximum: 16,
    maximumPacketSize: 1024 * 1024,
    topicAliasMaximum: 0,
    lastWill: undefined,
  };
  const keepaliveMs = r.duration('keepalive', 60_000);
  if (keepaliveMs > 0 && keepaliveMs < 1000) r.fail('keepalive', '0 (off) or at least 1s (MQTT counts whole seconds)', r.raw('keepalive'));
  if (conn.keepalive > 65535) r.fail('keepalive', 'at most 65535 seconds', r.raw('keepalive'));
  if (!conn.server.tls) {
    for (const key of ['root_cert', 'client_cert', 'client_key'] as const) {
      if (r.has(key) && r.raw(key) !== '') r.fail(key, 'a tls:// server for TLS files (server is tcp://)', r.raw(key));
    }
  }
  if ((conn.clientCert === undefined) !== (conn.clientKey === undefined)) {
    r.fail(conn.clientCert === undefined ? 'client_cert' : 'client_key', 'client_cert and client_key together', undefined);
  }
  if (v4 !== undefined) {
    const clean = v4.bool('clean_session', true);
    const will = parseLastWill(v4.table('last_will'), false);
    v4.done();
    if (mqttVer !== 5) {
      conn.cleanStart = clean;
      conn.lastWill = will;
    }
  }
  if (v5 !== undefined) {
    const clean = v5.bool('clean_start', true);
    const expiry = Math.floor(v5.duration('session_expiry_interval', 0) / 1000);
    const receiveMaximum = v5.int('receive_maximum', 1, 65535, 16);
    const maximumPacketSize = v5.size('maximum_packet_size', 1024 * 1024);
    if (maximumPacketSize < 1 || maximumPacketSize > 268_435_460) v5.fail('maximum_packet_size', 'a size from 1 byte to 256MB', v5.raw('maximum_packet_size'));
    const topicAliasMaximum = v5.int('topic_alias_maximum', 0, 65535, 0);
    const will = parseLastWill(v5.table('last_will'), true);
    v5.done();
    if (expiry > 0xffffffff) v5.fail('session_expiry_interval', 'at most 4294967295 seconds', v5.raw('session_expiry_interval'));
    if (mqttVer === 5) Object.assign(conn, { cleanStart: clean, sessionExpiryInterval: expiry, receiveMaximum, maximumPacketSize, topicAliasMaximum, lastWill: will });
  }
  return conn;
}

/** Options for mqtt.js `connect()` (a structural subset of its IClientOptions). */
export interface MqttClientOptions {
  protocol: 'mqtt' | 'mqtts';
  host: string;
  port: number;
  clientId: string;
  username?: string;
  password?: string;
  protocolVersion: 3 | 4 | 5;
  protocolId: 'MQTT' | 'MQIsdp';
  clean: boolean;
  keepalive: number;
  connectTimeout: number;
  reconnectPeriod: number;
  reconnectOnConnackError: boolean;
  resubscribe: boolean;
  queueQoSZero: boolean;
  /** mqtt.js's store of QoS 1/2 messages sent and not yet acknowledged (default: its in-memory one). */
  outgoingStore?: unknown;
  /** mqtt.js's debug logging: off (with it on, every packet costs a call into the debug package). */
  log: (...args: unknown[]) => void;
  properties?: { sessionExpiryInterval?: number; receiveMaximum?: number; maximumPacketSize?: number; topicAliasMaximum?: number };
  will?: {
    topic: string;
    payload: Buffer;
    qos: QoS;
    retain: boolean;
    properties?: { willDelayInterval?: number; messageExpiryInterval?: number; contentType?: string; responseTopic?: string; correlationData?: Buffer };
  };
  ca?: Buffer[];
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized?: boolean;
  servername?: string;
}

function noLog(): void {}

/** mqtt.js options for one of the bridge's clients; reads the TLS files (an unreadable one throws naming it). */
export function mqttClientOptions(c: BridgeConnection, clientId: string): MqttClientOptions {
  const o: MqttClientOptions = {
    protocol: c.server.tls ? 'mqtts' : 'mqtt',
    host: c.server.host,
    port: c.server.port,
    clientId,
    protocolVersion: c.mqttVer,
    protocolId: c.mqttVer === 3 ? 'MQIsdp' : 'MQTT',
    clean: c.cleanStart,
    keepalive: c.keepalive,
    connectTimeout: c.connectTimeout,
    reconnectPeriod: c.reconnectInterval,
    reconnectOnConnackError: true,
    // subscriptions and queued messages are the bridge's business, not mqtt.js's
    resubscribe: false,
    queueQoSZero: false,
    log: noLog,
  };
  if (c.username !== undefined) o.username = c.username;
  if (c.password !== undefined) o.password = c.password;
  if (c.mqttVer === 5) {
    o.properties = { receiveMaximum: c.receiveMaximum, maximumPacketSize: c.maximumPacketSize };
    if (c.sessionExpiryInterval > 0) o.properties.sessionExpiryInterval = c.sessionExpiryInterval;
    if (c.topicAliasMaximum > 0) o.properties.topicAliasMaximum = c.topicAliasMaximum;
  }
  const w = c.lastWill;
  if (w !== undefined) {
    o.will = { topic: w.topic, payload: w.payload, qos: w.qos, retain: w.retain };
    if (c.mqttVer === 5) {
      const p: NonNullable<NonNullable<MqttClientOptions['will']>['properties']> = {};
      if (w.delayInterval !== undefined) p.willDelayInterval = w.delayInterval;
      if (w.messageExpiryInterval !== undefined) p.messageExpiryInterval = w.messageExpiryInterval;
      if (w.contentType !== undefined) p.contentType = w.contentType;
      if (w.responseTopic !== undefined) p.responseTopic = w.responseTopic;
      if (w.correlationData !== undefined) p.correlationData = w.correlationData;
      if (Object.keys(p).length > 0) o.will.properties = p;
    }
  }
  if (c.server.tls) {
    const read = (path: string, key: string): Buffer => {
      try {
        return readFileSync(path);
      } catch (err) {
        throw new Error(`${key}: cannot read "${path}": ${(err as Error).message}`);
      }
    };
    if (c.rootCert !== undefined) o.ca = [read(c.rootCert, 'root_cert')];
    if (c.clientCert !== undefined && c.clientKey !== undefined) {
      o.cert = read(c.clientCert, 'client_cert');
      o.key = read(c.clientKey, 'client_key');
    }
    o.rejectUnauthorized = true;
    if (isIP(c.server.host) === 0) o.servername = c.server.host;
  }
  return o;
}

/** `server` as written back (logs, attrs). */
export function serverText(s: ServerAddress): string {
  const host = isIP(s.host) === 6 ? `[${s.host}]` : s.host;
  return `${s.tls ? 'tls' : 'tcp'}://${host}:${s.port}`;
}

/**
 * Read `[[bridges]]`: each table's connection keys, then its own (`more`, which reads the direction's keys
 * and entries); unknown keys and two enabled bridges with one name are refused. Throws naming the path.
 */
export function parseBridgeList<B extends BridgeConnection>(value: unknown, cwd: string, more: (r: TableReader, conn: BridgeConnection) => B): B[] {
  if (!Array.isArray(value)) throw new Error('expected an array of tables ([[bridges]])');
  const names = new Set<string>();
  return value.map((item, i) => {
    const r = new TableReader(item, `[${i}]`);
    const bridge = more(r, parseConnection(r, cwd));
    r.done();
    if (bridge.enable) {
      if (names.has(bridge.name)) r.fail('name', 'a name no other enabled bridge has', bridge.name);
      names.add(bridge.name);
    }
    return bridge;
  });
}
