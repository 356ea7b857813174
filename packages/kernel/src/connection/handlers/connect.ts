/**
 * CONNECT: client id and keepalive rules, will checks, authentication (hooks, then allow_anonymous),
 * enhanced authentication, the session (new, resumed, taken over), CONNACK.
 * Order as RMQTT: client.connect → limits → client.authenticate → lock → session → CONNACK →
 * client.connack → client.connected → inflight re-sent, queue drained.
 */
import { randomUUID } from 'node:crypto';
import { ReasonCode, topicLevels, type AuthResult, type ConnectInfo } from '@rmqtt-ts/plugin-api';
import type { ConnectPacket, Properties } from '../../codec/packets.js';
import { C } from '../../metrics/metrics.js';
import { messagePropertiesOf } from '../../publish/message-properties.js';
import { effectiveSessionExpiry } from '../../session/expiry.js';
import type { OpenResult } from '../../session/registry.js';
import type { Connection } from '../connection.js';
import { beginEnhancedAuth } from './auth.js';

const DENY: AuthResult = Object.freeze({ result: 'deny' });
const ALLOW: AuthResult = Object.freeze({ result: 'allow' });

export function handleConnect(conn: Connection, p: ConnectPacket): void | Promise<void> {
  const k = conn.kernel;
  const L = conn.listener;
  const v5 = p.protocolVersion === 5;
  conn.version = p.protocolVersion;
  k.metrics.counters[C['client.connect']]!++;

  const props = p.properties;
  if (v5) {
    conn.problemInfo = props.requestProblemInformation !== 0;
    if (props.maximumPacketSize !== undefined) conn.maxOutPacket = props.maximumPacketSize;
    if (props.receiveMaximum !== undefined) conn.receiveMaximum = props.receiveMaximum;
    // the broker assigns outbound aliases up to min(client's maximum, listener's)
    conn.outAliasMax = Math.min(props.topicAliasMaximum ?? 0, L.maxTopicAliases);
  }

  // client identifier [MQTT-3.1.3-6, -7, -8]
  let clientId = p.clientId;
  let assigned = false;
  if (clientId.length === 0) {
    if (p.protocolVersion === 3 || !p.cleanStart) {
      return refuse(conn, ReasonCode.ClientIdentifierNotValid, 'empty client id without clean start');
    }
    clientId = randomUUID().replaceAll('-', '');
    assigned = true;
  }
  if (clientId.length > L.maxClientidLen) {
    return refuse(conn, ReasonCode.ClientIdentifierNotValid, `client id longer than ${L.maxClientidLen}`);
  }

  // keepalive: 3.x outside [min, max] (or 0 when not allowed) is refused; v5 is clamped and announced
  let keepalive = p.keepalive;
  if (!v5) {
    const zeroRefused = keepalive === 0 && !L.allowZeroKeepalive;
    const outOfRange = keepalive !== 0 && (keepalive < L.minKeepalive || keepalive > L.maxKeepalive);
    if (zeroRefused || outOfRange) {
      return refuse(conn, ReasonCode.ClientIdentifierNotValid, `keepalive ${keepalive} outside [${L.minKeepalive}, ${L.maxKeepalive}]`);
    }
  } else if (keepalive === 0) {
    if (!L.allowZeroKeepalive) keepalive = L.minKeepalive > 0 ? L.minKeepalive : L.maxKeepalive;
  } else {
    keepalive = Math.min(Math.max(keepalive, L.minKeepalive), L.maxKeepalive);
  }

  // will
  const will = p.will;
  if (will !== null) {
    if (will.qos > L.maxQosAllowed) {
      // v5 CONNACK 0x9B [MQTT-3.2.2-12]; a 3.x client is just closed
      if (v5) return refuse(conn, ReasonCode.QoSNotSupported, `will QoS ${will.qos} above ${L.maxQosAllowed}`);
      return closeSilently(conn, ReasonCode.QoSNotSupported, 'will QoS above max_qos_allowed');
    }
    if (L.maxTopicLevels > 0 && topicLevels(will.topic) > L.maxTopicLevels) {
      if (v5) return refuse(conn, ReasonCode.TopicNameInvalid, `will topic has more than ${L.maxTopicLevels} levels`);
      return closeSilently(conn, ReasonCode.TopicNameInvalid, 'will topic has too many levels');
    }
    if (will.retain && k.ext.retainStore === null) {
      if (v5) return refuse(conn, ReasonCode.RetainNotSupported, 'will retain without retained messages');
      will.retain = false; // 3.x: published as non-retained
    }
  }

  if (k.closing) return refuse(conn, ReasonCode.ServerUnavailable, 'server shutting down');
  const maxSessions = k.config.mqtt.maxSessions;
  if (maxSessions > 0 && k.sessions.size >= maxSessions && k.sessions.get(clientId) === undefined) {
    return refuse(conn, ReasonCode.ServerUnavailable, 'too many sessions');
  }

  // session expiry: v5 as requested (capped); 3.x persistent sessions live session_expiry_interval
  const requestedExpiry = v5 ? (props.sessionExpiryInterval ?? 0) : p.cleanStart ? 0 : L.sessionExpiryIntervalS;
  conn.connectSessionExpiry = requestedExpiry;
  const expiry = v5 ? effectiveSessionExpiry(requestedExpiry, L) : requestedExpiry;

  conn.keepalive = keepalive;
  conn.clientId = clientId;
  const t = conn.transport;
  const info: ConnectInfo = {
    node: k.nodeId,
    listener: L.name,
    remoteAddr: t.remote,
    get localAddr() {
      return t.local;
    },
    clientId,
    clientIdAssigned: assigned,
    username: L.certCnAsUsername && t.certCommonName !== undefined ? t.certCommonName : p.username,
    password: p.password,
    protoVer: p.protocolVersion,
    protoName: p.protocolName,
    keepalive,
    cleanStart: p.cleanStart,
    sessionExpiryInterval: expiry,
    will:
      will === null
        ? undefined
        : {
            topic: will.topic,
            payload: will.payload,
            qos: will.qos,
            retain: will.retain,
            delayInterval: will.properties.willDelayInterval ?? 0,
            properties: messagePropertiesOf(will.properties),
          },
    userProperties: props.userProperties ?? [],
    certCommonName: t.certCommonName,
  };

  // Everything below stays synchronous while every hook and extension answers synchronously: a
  // CONNECT then costs no promise and no pause of the socket.
  const hooks = k.hooks;
  const observed = hooks.has('client.connect') ? hooks.observe('client.connect', { connectInfo: info }) : undefined;
  if (observed instanceof Promise) return observed.then(() => afterConnectHook(conn, info, props, expiry));
  return afterConnectHook(conn, info, props, expiry);
}

function afterConnectHook(conn: Connection, info: ConnectInfo, props: Properties, expiry: number): void | Promise<void> {
  if (conn.version === 5 && props.authenticationMethod !== undefined) return beginEnhancedAuth(conn, info, props, expiry);
  const auth = authenticate(conn, info);
  if (auth instanceof Promise) {
    return auth.then((a) => (a === undefined ? undefined : completeConnect(conn, info, expiry, a.superuser === true, a.attributes)));
  }
  if (auth === undefined) return;
  return completeConnect(conn, info, expiry, auth.superuser === true, auth.attributes);
}

/**
 * Authentication: the client.authenticate handlers decide (a client without a username too); when none
 * decides, allow_anonymous does. Gives undefined when the connection was refused.
 */
function authenticate(conn: Connection, info: ConnectInfo): AuthResult | undefined | Promise<AuthResult | undefined> {
  const k = conn.kernel;
  k.metrics.counters[C['client.authenticate']]!++;
  if (!k.hooks.has('client.authenticate')) return judge(conn, info, undefined);
  const decision = k.hooks.decide('client.authenticate', { connectInfo: info }, undefined, DENY);
  if (decision instanceof Promise) return decision.then((d) => judge(conn, info, d));
  return judge(conn, info, decision);
}

function judge(conn: Connection, info: ConnectInfo, decision: AuthResult | undefined): AuthResult | undefined {
  const k = conn.kernel;
  if (conn.closed) return undefined;
  if (decision === undefined) {
    if (info.username === undefined) k.metrics.counters[C['client.auth.anonymous']]!++;
    if (conn.listener.allowAnonymous) return ALLOW;
    if (info.username === undefined) k.metrics.counters[C['client.auth.anonymous.error']]!++;
    k.metrics.counters[C['client.connack.auth.error']]!++;
    refuse(conn, ReasonCode.NotAuthorized, 'not authorized', info);
    return undefined;
  }
  if (decision.result !== 'allow') {
    k.metrics.counters[C['client.connack.auth.error']]!++;
    refuse(conn, decision.reasonCode ?? ReasonCode.BadUserNameOrPassword, 'authentication failed', info);
    return undefined;
  }
  return decision;
}

/** Authentication succeeded: the session (under the client id's lock), CONNACK, and what follows it. */
export function completeConnect(
  conn: Connection,
  info: ConnectInfo,
  expiry: number,
  superuser: boolean,
  attributes: Record<string, unknown> | undefined,
  authProps?: Properties,
): void | Promise<void> {
  const lock = conn.kernel.ext.cluster.lock(info.clientId);
  const go = (unlock: () => void): void | Promise<void> => {
    if (conn.closed) {
      unlock();
      return;
    }
    let opened: OpenResult | Promise<OpenResult>;
    try {
      opened = conn.kernel.sessions.open(conn, info, expiry);
    } catch (err) {
      unlock();
      throw err;
    }
    if (opened instanceof Promise) {
      return opened.then(
        (o) => {
          unlock();
          finishConnect(conn, info, o, superuser, attributes, authProps);
        },
        (err: unknown) => {
          unlock();
          throw err;
        },
      );
    }
    unlock();
    finishConnect(conn, info, opened, superuser, attributes, authProps);
  };
  return lock instanceof Promise ? lock.then(go) : go(lock);
}

function finishConnect(
  conn: Connection,
  info: ConnectInfo,
  opened: OpenResult,
  superuser: boolean,
  attributes: Record<string, unknown> | undefined,
  authProps: Properties | undefined,
): void {
  const k = conn.kernel;
  const L = conn.listener;
  if (conn.closed) {
    // the client went away while its session was opened
    k.sessions.abandon(opened.session);
    return;
  }
  const s = opened.session;
  const present = opened.present;
  s.superuser = superuser;
  s.sessionPresent = present;
  if (attributes !== undefined) for (const [key, value] of Object.entries(attributes)) s.setAttribute(key, value);
  conn.session = s;
  conn.state = 'connected';
  k.connections.connected(conn);
  k.sessions.attach(s, conn);
  const props: Properties = {};
  if (conn.version === 5) {
    if (info.sessionExpiryInterval !== conn.connectSessionExpiry) props.sessionExpiryInterval = info.sessionExpiryInterval;
    props.receiveMaximum = L.maxInflight;
    if (L.maxQosAllowed < 2) props.maximumQoS = L.maxQosAllowed;
    if (k.ext.retainStore === null) props.retainAvailable = 0;
    props.maximumPacketSize = L.maxPacketSize;
    if (L.maxTopicAliases > 0) props.topicAliasMaximum = L.maxTopicAliases;
    if (info.clientIdAssigned) props.assignedClientIdentifier = info.clientId;
    props.serverKeepAlive = info.keepalive;
    if (authProps !== undefined) Object.assign(props, authProps);
  }
  conn.keepaliveTimeoutMs = info.keepalive > 0 ? info.keepalive * L.keepaliveBackoff * 2 * 1000 : 0;
  conn.sendConnack(present, ReasonCode.Success, props);
  k.metrics.counters[C['client.connack']]!++;
  k.metrics.counters[C['client.connected']]!++;
  const hooks = k.hooks;
  if (hooks.has('client.connack')) void hooks.observe('client.connack', { connectInfo: info, reasonCode: 0, sessionPresent: present });
  if (hooks.has('client.connected')) void hooks.observe('client.connected', { client: s.info, sessionPresent: present });
  s.out.attach(conn.receiveMaximum);
}

/**
 * Refuse with a CONNACK code (3.x: the matching return code) and close. Once the CONNECT is understood
 * (info known), the refusal is a client.connack event too.
 */
export function refuse(conn: Connection, code: number, message: string, info?: ConnectInfo): void {
  const k = conn.kernel;
  k.metrics.counters[C['client.connack.error']]!++;
  if (code === ReasonCode.ServerUnavailable) k.metrics.counters[C['client.connack.unavailable.error']]!++;
  conn.sendConnack(false, code, conn.reasonProps(code, message, true));
  if (info !== undefined && k.hooks.has('client.connack')) {
    void k.hooks.observe('client.connack', { connectInfo: info, reasonCode: code, sessionPresent: false });
  }
  k.logger.debug({ clientId: conn.clientId, code, reason: message }, 'connection refused');
  conn.teardown({ code, by: 'server', message }, false);
}

function closeSilently(conn: Connection, code: number, message: string): void {
  conn.kernel.metrics.counters[C['client.connack.error']]!++;
  conn.teardown({ code, by: 'server', message }, false);
}
