/**
 * RMQTT's web-hook event bodies: snake_case JSON, `time` as local "YYYY-MM-DD HH:MM:SS.mmm", times in ms,
 * "undefined" for a missing username, `ipaddress` as "ip:port", payloads in base64.
 */
import { rmqttTime, subscriptionOptionsJson, type ClientInfo, type ConnectInfo, type Message, type SubscriptionOptions } from '@rmqtt-ts/plugin-api';

export const eventTime = (ms: number): string => rmqttTime(ms, true);

type Body = Record<string, unknown>;

function address(ip: string | undefined, port: number | undefined): string | null {
  if (ip === undefined || ip === '') return null;
  return ip.includes(':') ? `[${ip}]:${port ?? 0}` : `${ip}:${port ?? 0}`;
}

/** node, ipaddress, clientid, username of a client. */
export function who(ci: ConnectInfo): Body {
  return { node: ci.node, ipaddress: address(ci.remoteAddr.ip, ci.remoteAddr.port), clientid: ci.clientId, username: ci.username ?? 'undefined' };
}

export function connectBody(ci: ConnectInfo): Body {
  return { ...who(ci), keepalive: ci.keepalive, proto_ver: ci.protoVer, ...(ci.protoVer === 5 ? { clean_start: ci.cleanStart } : { clean_session: ci.cleanStart }) };
}

const V3_CONNACK: Record<number, string> = {
  0: 'Connection Accepted',
  1: 'Connection Refused, unacceptable protocol version',
  2: 'Connection Refused, identifier rejected',
  3: 'Connection Refused, Server unavailable',
  4: 'Connection Refused, bad user name or password',
  5: 'Connection Refused, not authorized',
};
const V5_CONNACK: Record<number, string> = {
  0x00: 'Connection Accepted',
  0x84: 'protocol version is not supported',
  0x85: 'client identifier is invalid',
  0x86: 'bad user name or password',
  0x87: 'not authorized',
  0x88: 'Server unavailable',
};
/** v5 reason codes as the 3.x return codes a 3.x client was sent. */
const V5_TO_V3: Record<number, number> = { 0x84: 1, 0x85: 2, 0x88: 3, 0x86: 4, 0x87: 5 };

/** RMQTT's `conn_ack` text for a CONNACK reason code. */
export function connackText(code: number, protoVer: number): string {
  if (protoVer === 5) return V5_CONNACK[code] ?? 'Connection Refused';
  return V3_CONNACK[V5_TO_V3[code] ?? code] ?? 'Connection Refused';
}

export const optsJson = subscriptionOptionsJson;

/**
 * The options of a SUBSCRIBE as it arrived: the group and limit its filter's prefix names (`$share/{g}/`,
 * `$limit/{n}/`, `$exclusive/`), which the broker has not parsed yet at that point.
 */
export function requestOptions(filter: string, o: SubscriptionOptions): SubscriptionOptions {
  if (filter.startsWith('$share/')) return { ...o, shareGroup: filter.split('/')[1] };
  if (filter.startsWith('$exclusive/')) return { ...o, limit: 1 };
  if (filter.startsWith('$limit/')) {
    const n = Number(filter.split('/')[1]);
    return Number.isInteger(n) ? { ...o, limit: n } : o;
  }
  return o;
}

/** A subscription filter without `$share/{g}/`, `$exclusive/` or `$limit/{n}/`. */
export function bareFilter(filter: string): string {
  if (filter.startsWith('$share/') || filter.startsWith('$limit/')) return filter.split('/').slice(2).join('/');
  if (filter.startsWith('$exclusive/')) return filter.slice('$exclusive/'.length);
  return filter;
}

function fromJson(m: Message): Body {
  const f = m.from;
  return { from_type: f.type, from_node: f.node, from_ipaddress: f.ip === undefined || f.ip === '' ? null : f.ip, from_clientid: f.clientId, from_username: f.username ?? 'undefined' };
}

function messageFields(m: Message, qos: number): Body {
  return { dup: false, retain: m.retain, qos, topic: m.topic, packet_id: null, payload: m.payload.toString('base64') };
}

export function publishBody(m: Message): Body {
  return { ...fromJson(m), ...messageFields(m, m.qos), ts: m.createdAt };
}

/** message_delivered / message_acked / offline_message: the sender, the receiver, the message. */
export function deliveryBody(m: Message, to: Body, qos: number, now: number): Body {
  return { ...fromJson(m), ...to, ...messageFields(m, qos), pts: m.createdAt, ts: now };
}

export function droppedBody(m: Message, to: Body | undefined, reason: string, now: number): Body {
  return { ...fromJson(m), ...(to ?? {}), ...messageFields(m, m.qos), reason, pts: m.createdAt, ts: now };
}

/** The receiver fields of a client known by its ClientInfo. */
export function toClient(c: ClientInfo): Body {
  return who(c.connectInfo);
}

/** A drop reason as RMQTT writes it. */
export function dropReason(reason: string): string {
  switch (reason) {
    case 'queue_full':
      return 'MessageQueueFull';
    case 'expired':
      return 'MessageExpiration';
    case 'rejected':
    case 'acl_denied':
      return 'PublishRefused';
    case 'delayed_limit':
      return 'DelayedPublishRefused';
    default:
      return reason;
  }
}
