/**
 * Special prefixes of subscription filters (`$share/`, `$exclusive/`, `$limit/`) and of publish
 * topics (`$delayed/`). The parsed filter, without its prefix, is what the router and ACL see.
 */
import { isValidTopicFilter, isValidTopicName, topicLevels } from '@rmqtt-ts/plugin-api';

const SHARE = '$share/';
const EXCLUSIVE = '$exclusive/';
const LIMIT = '$limit/';
const DELAYED = '$delayed/';
const DOLLAR = 0x24;
const PLUS = 0x2b;
const HASH = 0x23;

export type ParsedFilter =
  | { readonly ok: true; readonly filter: string; readonly shareGroup: string | undefined; readonly limit: number | undefined }
  | { readonly ok: false; readonly reason: 'invalid_filter' | 'invalid_share' | 'too_many_levels' };

export interface FilterParseOptions {
  /** The listener's `limit_subscription`: `$exclusive/` and `$limit/n/` are special only when on. */
  readonly limitSubscription: boolean;
  /** `max_topic_levels` (0 = unlimited), counted on the filter without its prefix. */
  readonly maxTopicLevels: number;
}

const INVALID_FILTER: ParsedFilter = Object.freeze({ ok: false, reason: 'invalid_filter' });
const INVALID_SHARE: ParsedFilter = Object.freeze({ ok: false, reason: 'invalid_share' });
const TOO_MANY_LEVELS: ParsedFilter = Object.freeze({ ok: false, reason: 'too_many_levels' });

/**
 * Split a SUBSCRIBE/UNSUBSCRIBE filter into the filter proper and its special form. A filter inside
 * `$share/{group}/` is taken literally (`$share/g/$exclusive/t` shares the filter `$exclusive/t`), and
 * so is the rest after `$exclusive/` or `$limit/n/`: prefixes do not nest.
 */
export function parseSubscriptionFilter(raw: string, opts: FilterParseOptions): ParsedFilter {
  // Most filters do not start with `$`: skip every prefix test for them.
  if (raw.charCodeAt(0) !== DOLLAR) return finish(raw, undefined, undefined, opts, INVALID_FILTER);

  if (raw.startsWith(SHARE)) {
    const slash = raw.indexOf('/', SHARE.length);
    // A ShareName of at least one character, followed by `/` and a Topic Filter [MQTT-4.8.2-1, -2].
    if (slash === -1 || slash === SHARE.length) return INVALID_SHARE;
    for (let i = SHARE.length; i < slash; i++) {
      const c = raw.charCodeAt(i);
      // The ShareName must not contain `+` or `#` [MQTT-4.8.2-2] (nor U+0000 [MQTT-1.5.4-2]).
      if (c === PLUS || c === HASH || c === 0) return INVALID_SHARE;
    }
    return finish(raw.slice(slash + 1), raw.slice(SHARE.length, slash), undefined, opts, INVALID_SHARE);
  }

  if (opts.limitSubscription) {
    if (raw.startsWith(EXCLUSIVE)) return finish(raw.slice(EXCLUSIVE.length), undefined, 1, opts, INVALID_FILTER);
    if (raw.startsWith(LIMIT)) {
      const slash = raw.indexOf('/', LIMIT.length);
      if (slash === -1) return INVALID_FILTER;
      const n = parseDigits(raw, LIMIT.length, slash);
      if (n === undefined || n < 1) return INVALID_FILTER;
      return finish(raw.slice(slash + 1), undefined, n, opts, INVALID_FILTER);
    }
  }
  return finish(raw, undefined, undefined, opts, INVALID_FILTER);
}

function finish(
  filter: string,
  shareGroup: string | undefined,
  limit: number | undefined,
  opts: FilterParseOptions,
  invalid: ParsedFilter,
): ParsedFilter {
  if (!isValidTopicFilter(filter)) return invalid;
  if (opts.maxTopicLevels > 0 && topicLevels(filter) > opts.maxTopicLevels) return TOO_MANY_LEVELS;
  return { ok: true, filter, shareGroup, limit };
}

/**
 * `$delayed/{seconds}/{topic}` → the delay and the topic to publish later. Undefined for anything else,
 * a topic without the prefix included: the caller tests `topic.startsWith('$delayed/')` first and
 * treats undefined as an invalid topic name.
 */
export function parseDelayedTopic(topic: string): { delaySeconds: number; topic: string } | undefined {
  if (!topic.startsWith(DELAYED)) return undefined;
  const slash = topic.indexOf('/', DELAYED.length);
  if (slash === -1) return undefined;
  const delaySeconds = parseDigits(topic, DELAYED.length, slash);
  if (delaySeconds === undefined) return undefined;
  const rest = topic.slice(slash + 1);
  if (!isValidTopicName(rest)) return undefined;
  return { delaySeconds, topic: rest };
}

/** A decimal integer of ASCII digits only (no sign, no spaces), within the safe integer range. */
function parseDigits(s: string, start: number, end: number): number | undefined {
  if (end <= start) return undefined;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
    if (n > Number.MAX_SAFE_INTEGER) return undefined;
  }
  return n;
}
