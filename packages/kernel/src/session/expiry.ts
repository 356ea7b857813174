/** Session expiry rules shared by CONNECT and DISCONNECT. */
import type { ListenerConfig } from '../config/index.js';

/** Session Expiry Interval meaning "never". */
export const NEVER_EXPIRES = 0xffffffff;

/** A v5 requested interval capped by max_session_expiry_interval when that is set (non-zero). */
export function effectiveSessionExpiry(requested: number, listener: ListenerConfig): number {
  const cap = listener.maxSessionExpiryIntervalS;
  if (cap > 0 && requested > cap) return cap;
  return requested;
}
