/**
 * Topic names and filters (MQTT 5.0 section 4.7). Pure functions shared by the kernel and plugins.
 */

const SLASH = 0x2f;
const PLUS = 0x2b;
const HASH = 0x23;
const DOLLAR = 0x24;

/** A topic name a client may publish to: non-empty, no wildcards [MQTT-3.3.2-2], no U+0000. */
export function isValidTopicName(topic: string): boolean {
  if (topic.length === 0) return false;
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c === PLUS || c === HASH || c === 0) return false;
  }
  return true;
}

/**
 * A well-formed topic filter [MQTT-4.7.1-1, -2, -3]: `#` only as the whole last level, `+` only as a
 * whole level, not empty, no U+0000.
 */
export function isValidTopicFilter(filter: string): boolean {
  const n = filter.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = filter.charCodeAt(i);
    if (c === 0) return false;
    if (c === HASH) {
      if (i !== n - 1) return false;
      if (i > 0 && filter.charCodeAt(i - 1) !== SLASH) return false;
    } else if (c === PLUS) {
      if (i > 0 && filter.charCodeAt(i - 1) !== SLASH) return false;
      if (i < n - 1 && filter.charCodeAt(i + 1) !== SLASH) return false;
    }
  }
  return true;
}

/** Number of levels in a topic or filter (`a/b` has 2, `/` has 2). */
export function topicLevels(topic: string): number {
  let levels = 1;
  for (let i = 0; i < topic.length; i++) if (topic.charCodeAt(i) === SLASH) levels++;
  return levels;
}

/** Whether a filter has a wildcard character. */
export function hasWildcard(filter: string): boolean {
  for (let i = 0; i < filter.length; i++) {
    const c = filter.charCodeAt(i);
    if (c === PLUS || c === HASH) return true;
  }
  return false;
}

/**
 * Whether a topic name matches a filter. Topics starting with `$` are not matched by a filter whose
 * first level is a wildcard [MQTT-4.7.2-1].
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.charCodeAt(0) === DOLLAR) {
    const f0 = filter.charCodeAt(0);
    if (f0 === PLUS || f0 === HASH) return false;
  }
  let fi = 0;
  let ti = 0;
  const fn = filter.length;
  const tn = topic.length;
  while (fi < fn) {
    const c = filter.charCodeAt(fi);
    if (c === HASH) return true; // matches the parent level and everything below [MQTT-4.7.1-2]
    if (c === PLUS) {
      while (ti < tn && topic.charCodeAt(ti) !== SLASH) ti++;
      fi++;
    } else {
      // compare one level literally
      while (fi < fn && ti < tn) {
        const fc = filter.charCodeAt(fi);
        if (fc === SLASH) break;
        if (fc !== topic.charCodeAt(ti)) return false;
        fi++;
        ti++;
      }
      if (fi < fn && filter.charCodeAt(fi) !== SLASH) return false;
      if (ti < tn && topic.charCodeAt(ti) !== SLASH) return false;
    }
    // both at a level boundary or end
    if (fi === fn) return ti === tn;
    // filter has a '/' at fi
    if (ti === tn) {
      // topic ended: only "/#" can still match (the parent level)
      return fi + 2 === fn && filter.charCodeAt(fi + 1) === HASH;
    }
    fi++;
    ti++;
  }
  return ti === tn;
}

/**
 * Whether every topic matched by `inner` is also matched by `outer` (used by ACL rules: a subscription
 * is covered by a rule's filter).
 */
export function filterCovers(outer: string, inner: string): boolean {
  if (outer === inner) return true;
  const o = outer.split('/');
  const i = inner.split('/');
  if (inner.charCodeAt(0) === DOLLAR) {
    const o0 = outer.charCodeAt(0);
    if (o0 === PLUS || o0 === HASH) return false;
  }
  for (let k = 0; k < o.length; k++) {
    const ol = o[k];
    if (ol === '#') return true;
    if (k >= i.length) return false;
    const il = i[k];
    if (il === '#') return false;
    if (ol === '+') continue;
    if (il === '+' || ol !== il) return false;
  }
  return o.length === i.length;
}
