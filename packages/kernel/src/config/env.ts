/**
 * Environment variables → dotted keys, by our own rule rather than convict's per-key `env` names (the
 * listener subtrees are not known in advance): strip the prefix, `__` separates levels, lower-case.
 * RMQTT_LISTENER__TCP__EXTERNAL__ADDR → listener.tcp.external.addr.
 */

export interface EnvEntry {
  /** The variable as written, for error messages. */
  variable: string;
  path: string[];
  value: string;
}

/**
 * Variables starting with `prefix` (compared case-insensitively, as RMQTT's config crate does), except
 * those starting with one of `except` (RMQTT_PLUGIN_* belong to the plugins), sorted by name so the
 * result does not depend on the order of the environment block.
 */
export function envEntries(env: NodeJS.ProcessEnv, prefix: string, except: readonly string[] = []): EnvEntry[] {
  const upperPrefix = prefix.toUpperCase();
  const out: EnvEntry[] = [];
  for (const [variable, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const upper = variable.toUpperCase();
    if (!upper.startsWith(upperPrefix) || except.some((e) => upper.startsWith(e.toUpperCase()))) continue;
    out.push({ variable, path: variable.slice(prefix.length).toLowerCase().split('__'), value });
  }
  return out.sort((a, b) => (a.variable < b.variable ? -1 : a.variable > b.variable ? 1 : 0));
}

export function envSource(variable: string): string {
  return `environment variable ${variable}`;
}
