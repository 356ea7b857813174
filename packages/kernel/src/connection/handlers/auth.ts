/**
 * Enhanced authentication (MQTT 5 section 4.12): CONNECT with an Authentication Method, then AUTH
 * exchanges decided by client.enhancedAuth handlers. Without a handler: CONNACK 0x8C. After CONNACK,
 * AUTH 0x19 re-authenticates.
 */
import { ReasonCode, type ConnectInfo, type EnhancedAuthResult } from '@rmqtt-ts/plugin-api';
import type { AuthPacket, Properties } from '../../codec/packets.js';
import type { Connection } from '../connection.js';
import { completeConnect, refuse } from './connect.js';

const FAIL: EnhancedAuthResult = Object.freeze({ reasonCode: ReasonCode.NotAuthorized });

interface PendingAuth {
  info: ConnectInfo;
  expiry: number;
  method: string;
}

function decide(conn: Connection, info: ConnectInfo, method: string, data: Buffer | undefined, reauthenticate: boolean) {
  return conn.kernel.hooks.decide('client.enhancedAuth', { connectInfo: info, method, data, reauthenticate }, undefined, FAIL);
}

export async function beginEnhancedAuth(conn: Connection, info: ConnectInfo, props: Properties, expiry: number): Promise<void> {
  const method = props.authenticationMethod!;
  if (!conn.kernel.hooks.has('client.enhancedAuth')) {
    refuse(conn, ReasonCode.BadAuthenticationMethod, `authentication method "${method}" not supported`);
    return;
  }
  const r = await decide(conn, info, method, props.authenticationData, false);
  await afterDecision(conn, { info, expiry, method }, r);
}

async function afterDecision(conn: Connection, pending: PendingAuth, r: EnhancedAuthResult | undefined): Promise<void> {
  if (conn.closed) return;
  if (r === undefined) {
    refuse(conn, ReasonCode.BadAuthenticationMethod, `authentication method "${pending.method}" not supported`);
    return;
  }
  if (r.reasonCode === ReasonCode.ContinueAuthentication) {
    conn.state = 'auth';
    conn.authMethod = pending.method;
    conn.pendingConnect = pending;
    conn.sendPacket({ type: 15, reasonCode: ReasonCode.ContinueAuthentication, properties: authProps(pending.method, r.data) });
    return;
  }
  if (r.reasonCode !== ReasonCode.Success) {
    refuse(conn, r.reasonCode, 'authentication failed');
    return;
  }
  conn.pendingConnect = undefined;
  conn.authMethod = pending.method;
  await completeConnect(conn, pending.info, pending.expiry, r.superuser === true, undefined, authProps(pending.method, r.data));
}

function authProps(method: string, data: Buffer | undefined): Properties {
  const p: Properties = { authenticationMethod: method };
  if (data !== undefined) p.authenticationData = data;
  return p;
}

export function handleAuth(conn: Connection, p: AuthPacket): void | Promise<void> {
  const method = p.properties.authenticationMethod;
  if (conn.state === 'auth') {
    const pending = conn.pendingConnect as PendingAuth;
    // [MQTT-4.12.0-?] the method must stay the same through the exchange
    if (p.reasonCode !== ReasonCode.ContinueAuthentication || method !== pending.method) {
      conn.protocolFailure(ReasonCode.ProtocolError, 'unexpected AUTH during authentication');
      return;
    }
    return Promise.resolve(decide(conn, pending.info, pending.method, p.properties.authenticationData, false)).then((r) => afterDecision(conn, pending, r));
  }
  // after CONNACK: re-authentication with the method of the CONNECT, started by 0x19 and continued
  // by 0x18 steps while the handler asks for more [MQTT-4.12.1-1]
  const expected = conn.reauthenticating ? ReasonCode.ContinueAuthentication : ReasonCode.ReAuthenticate;
  if (p.reasonCode !== expected || conn.authMethod === undefined || method !== conn.authMethod) {
    conn.protocolFailure(ReasonCode.ProtocolError, conn.authMethod === undefined ? 'AUTH without enhanced authentication' : 'unexpected AUTH');
    return;
  }
  conn.reauthenticating = true;
  const info = conn.session!.connectInfo;
  return Promise.resolve(decide(conn, info, method, p.properties.authenticationData, true)).then((r) => {
    if (conn.closed) return;
    if (r === undefined || r.reasonCode >= 0x80) {
      conn.disconnect(r?.reasonCode ?? ReasonCode.NotAuthorized, 're-authentication failed');
      return;
    }
    if (r.reasonCode !== ReasonCode.ContinueAuthentication) conn.reauthenticating = false;
    conn.sendPacket({ type: 15, reasonCode: r.reasonCode, properties: authProps(method, r.data) });
  });
}
