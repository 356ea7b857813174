/** UNSUBSCRIBE: remove each filter; v5 UNSUBACK says 0x11 for a filter with no subscription. */
import { ReasonCode } from '@rmqtt-ts/plugin-api';
import type { UnsubscribePacket } from '../../codec/packets.js';
import { removeSubscription } from '../../session/subscriptions.js';
import { C } from '../../metrics/metrics.js';
import type { Connection } from '../connection.js';

export function handleUnsubscribe(conn: Connection, p: UnsubscribePacket): void | Promise<void> {
  const k = conn.kernel;
  const s = conn.session!;
  const codes: number[] = [];
  const hooks = k.hooks;
  const since = k.journal.seq;
  const step = (i: number): void | Promise<void> => {
    for (; i < p.filters.length; i++) {
      k.metrics.counters[C['client.unsubscribe']]!++;
      let filter: string | null | Promise<string | null> = p.filters[i]!;
      if (hooks.has('client.unsubscribe')) filter = hooks.transform('client.unsubscribe', filter, { client: s.info });
      if (filter instanceof Promise) {
        const at = i;
        return filter.then((f) => {
          codes.push(unsubscribeOne(conn, f));
          return step(at + 1);
        });
      }
      codes.push(unsubscribeOne(conn, filter));
    }
    // a persistent session's UNSUBACK waits until the change is written (durable session store)
    return conn.afterWritten(since, () => conn.sendPacket({ type: 11, packetId: p.packetId, reasonCodes: conn.version === 5 ? codes : [], properties: {} }));
  };
  return step(0);
}

function unsubscribeOne(conn: Connection, filter: string | null): number {
  if (filter === null || conn.session === null) return ReasonCode.NoSubscriptionExisted;
  return removeSubscription(conn.kernel, conn.session, filter) ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted;
}
