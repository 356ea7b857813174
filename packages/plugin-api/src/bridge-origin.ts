/**
 * Bridge origin (RMQTT's rmqtt-bridge-origin convention). A bridge's MQTT clients carry a marker in their
 * client id — `{prefix}:{bridge}:egress:{node}:{entry}:{n}` or `…:ingress:…` — so the broker they connect
 * to knows them:
 * - a PUBLISH from an egress bridge client enters the broker as a bridged message (`from.type` 'bridge'),
 *   as does a message an ingress bridge routes in;
 * - a bridged message is never delivered to an ingress bridge client, and egress bridges do not forward
 *   bridged messages.
 * So two brokers bridged to each other, in either direction or both, never hand a message back and forth.
 */
export const BRIDGE_EGRESS_MARKER = ':egress:';
export const BRIDGE_INGRESS_MARKER = ':ingress:';

const ORIGIN = /:(egress|ingress):\d+:\d+:\d+$/;

/**
 * Whether a client id names one of a bridge's clients, and which way: the marker followed by the node,
 * entry and client numbers at the end (`…:egress:1:0:3`), so an ordinary id that merely contains
 * `:ingress:` is not taken for a bridge.
 */
export function bridgeOrigin(clientId: string): 'egress' | 'ingress' | undefined {
  if (!clientId.includes(BRIDGE_EGRESS_MARKER) && !clientId.includes(BRIDGE_INGRESS_MARKER)) return undefined;
  return ORIGIN.exec(clientId)?.[1] as 'egress' | 'ingress' | undefined;
}

/** The client id of one of a bridge's clients. */
export function bridgeClientId(prefix: string, bridge: string, direction: 'egress' | 'ingress', node: number, entry: number, n: number): string {
  return `${prefix}:${bridge}:${direction}:${node}:${entry}:${n}`;
}
