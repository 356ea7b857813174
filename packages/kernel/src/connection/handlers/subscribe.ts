/**
 * SUBSCRIBE: each filter through the subscription pipeline in order, one SUBACK with a code per filter
 * [MQTT-3.8.4-6], then the retained messages each new subscription is due.
 */
import { ReasonCode, type SubscribeRequest } from '@rmqtt-ts/plugin-api';
import type { SubscribePacket } from '../../codec/packets.js';
import { processSubscription, type SubscribeOutcome } from '../../session/subscriptions.js';
import type { Connection } from '../connection.js';

export function handleSubscribe(conn: Connection, p: SubscribePacket): void | Promise<void> {
  const subId = p.properties.subscriptionIdentifiers?.[0];
  const outcomes: SubscribeOutcome[] = [];
  return next(conn, p, subId, outcomes, 0, conn.kernel.journal.seq);
}

function next(conn: Connection, p: SubscribePacket, subId: number | undefined, outcomes: SubscribeOutcome[], i: number, since: number): void | Promise<void> {
  const s = conn.session!;
  for (; i < p.subscriptions.length; i++) {
    const r = p.subscriptions[i]!;
    const req: SubscribeRequest = {
      filter: r.filter,
      options: {
        qos: r.qos,
        noLocal: r.noLocal,
        retainAsPublished: r.retainAsPublished,
        retainHandling: r.retainHandling,
        subscriptionId: subId,
        shareGroup: undefined,
        limit: undefined,
      },
    };
    const o = processSubscription(conn.kernel, s, req);
    if (o instanceof Promise) {
      const at = i;
      return o.then((res) => {
        outcomes.push(res);
        return next(conn, p, subId, outcomes, at + 1, since);
      });
    }
    outcomes.push(o);
  }
  // a persistent session's SUBACK waits until its new subscriptions are written (durable session store)
  return conn.afterWritten(since, () => finish(conn, p, outcomes));
}

function finish(conn: Connection, p: SubscribePacket, outcomes: SubscribeOutcome[]): void | Promise<void> {
  if (conn.closed || conn.session === null) return;
  const bad = outcomes.find((o) => o.protocolError !== undefined);
  if (bad !== undefined) {
    conn.protocolFailure(ReasonCode.ProtocolError, bad.protocolError!);
    return;
  }
  const v5 = conn.version === 5;
  // 3.x SUBACK knows only 0x00-0x02 and 0x80 [MQTT-3.9.3-2]
  const reasonCodes = outcomes.map((o) => (v5 || o.code < 0x80 ? o.code : 0x80));
  conn.sendPacket({ type: 9, packetId: p.packetId, reasonCodes, properties: {} });
  const s = conn.session!;
  const publisher = conn.kernel.publisher;
  let pending: Promise<void> | undefined;
  for (const o of outcomes) {
    if (o.sendRetained !== undefined) {
      const sub = o.sendRetained;
      if (pending !== undefined) pending = pending.then(() => publisher.sendRetained(s, sub));
      else {
        const r = publisher.sendRetained(s, sub);
        if (r instanceof Promise) pending = r;
      }
    }
    if (o.created !== undefined && conn.kernel.ext.messageStore !== null) {
      const sub = o.created;
      pending = (pending ?? Promise.resolve()).then(() => publisher.replayStored(s, sub));
    }
  }
  return pending;
}
