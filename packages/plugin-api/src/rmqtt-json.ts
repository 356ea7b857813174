/**
 * RMQTT's JSON conventions, shared by the plugins that speak them (HTTP API, $SYS topics, web hooks):
 * local "YYYY-MM-DD HH:MM:SS[.mmm]" times and the `opts` object of a subscription.
 */
import type { SubscriptionOptions } from './message.js';

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** ms since the epoch → local "YYYY-MM-DD HH:MM:SS", with ".mmm" when `millis`. */
export function rmqttTime(ms: number, millis = false): string {
  const d = new Date(ms);
  const s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return millis ? `${s}.${pad(d.getMilliseconds(), 3)}` : s;
}

/** A subscription's options as RMQTT writes them: `qos`; v5 adds the rest; `group` / `limit_subs` when set. */
export function subscriptionOptionsJson(o: SubscriptionOptions, v5: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { qos: o.qos };
  if (v5) {
    out['no_local'] = o.noLocal;
    out['retain_as_published'] = o.retainAsPublished;
    out['retain_handling'] = o.retainHandling;
    if (o.subscriptionId !== undefined) out['id'] = o.subscriptionId;
  }
  if (o.shareGroup !== undefined) out['group'] = o.shareGroup;
  if (o.limit !== undefined) out['limit_subs'] = o.limit;
  return out;
}
