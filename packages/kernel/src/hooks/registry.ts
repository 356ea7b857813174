/**
 * The typed hook registry: observe / decide / transform. Higher priority runs first, ties in
 * registration order. A plugin's handlers are registered disabled and switched together by the plugin
 * manager (start/stop), so hot start/stop only flips flags and rebuilds the active lists.
 *
 * Dispatch stays synchronous while handlers answer synchronously, and turns into a promise only at the
 * first handler that returns one: a cached ACL answer costs no promise, and `has()` lets the hot path
 * skip building events nobody listens to.
 */
import {
  HOOKS,
  type HookDecision,
  type HookEvent,
  type HookHandler,
  type HookName,
  type HookOptions,
  type HookRegistrar,
  type HookResult,
  type Logger,
} from '@rmqtt-ts/plugin-api';

interface Entry {
  readonly owner: string;
  readonly name: HookName;
  readonly priority: number;
  readonly seq: number;
  readonly handler: (...args: unknown[]) => unknown;
  enabled: boolean;
}

type Active = readonly Entry[];
const EMPTY: Active = Object.freeze([]);

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function';
}

export class HookRegistry {
  #seq = 0;
  readonly #all = new Map<HookName, Entry[]>();
  /** Enabled handlers per hook, in run order; rebuilt on every change. */
  readonly #active = new Map<HookName, Active>();
  readonly #logger: Logger;
  /**
   * Whether each hook has an enabled handler, as plain fields: the per-delivery paths read
   * `hooks.active['message.delivered']` instead of a map lookup.
   */
  readonly active: { [N in HookName]: boolean };

  constructor(logger: Logger) {
    this.#logger = logger;
    this.active = Object.fromEntries(Object.keys(HOOKS).map((n) => [n, false])) as { [N in HookName]: boolean };
  }

  /** A registrar bound to one owner (plugin name). Handlers start disabled. */
  registrar(owner: string): HookRegistrar {
    return {
      on: <N extends HookName>(name: N, handler: HookHandler<N>, options?: HookOptions): void => {
        this.add(owner, name, handler, options, false);
      },
    };
  }

  add<N extends HookName>(owner: string, name: N, handler: HookHandler<N>, options: HookOptions | undefined, enabled: boolean): void {
    if (!(name in HOOKS)) throw new TypeError(`unknown hook "${String(name)}" registered by ${owner}`);
    if (typeof handler !== 'function') throw new TypeError(`hook "${name}" of ${owner}: handler must be a function`);
    const priority = options?.priority ?? 0;
    if (!Number.isFinite(priority)) throw new TypeError(`hook "${name}" of ${owner}: priority must be a finite number`);
    const list = this.#all.get(name) ?? [];
    list.push({ owner, name, priority, seq: this.#seq++, handler: handler as (...args: unknown[]) => unknown, enabled });
    // higher priority first; equal priorities in registration order
    list.sort((a, b) => b.priority - a.priority || a.seq - b.seq);
    this.#all.set(name, list);
    this.#rebuild(name);
  }

  /** Enable or disable every handler of an owner. */
  setEnabled(owner: string, enabled: boolean): void {
    for (const [name, list] of this.#all) {
      let changed = false;
      for (const e of list) {
        if (e.owner === owner && e.enabled !== enabled) {
          e.enabled = enabled;
          changed = true;
        }
      }
      if (changed) this.#rebuild(name);
    }
  }

  /** Remove every handler of an owner (plugin disposed). */
  removeOwner(owner: string): void {
    for (const [name, list] of this.#all) {
      const kept = list.filter((e) => e.owner !== owner);
      if (kept.length !== list.length) {
        this.#all.set(name, kept);
        this.#rebuild(name);
      }
    }
  }

  /** Whether any enabled handler listens to a hook. */
  has(name: HookName): boolean {
    return (this.#active.get(name) ?? EMPTY).length > 0;
  }

  /** Owners of the enabled handlers of a hook, in run order (for diagnostics and tests). */
  owners(name: HookName): string[] {
    return (this.#active.get(name) ?? EMPTY).map((e) => e.owner);
  }

  #rebuild(name: HookName): void {
    const list = this.#all.get(name) ?? [];
    const active = list.filter((e) => e.enabled);
    this.#active.set(name, active.length === 0 ? EMPTY : Object.freeze(active));
    this.active[name] = active.length > 0;
  }

  #logFailure(e: Entry, err: unknown): void {
    this.#logger.error({ err, plugin: e.owner, hook: e.name }, 'hook handler failed');
  }

  /**
   * Run every observer. Errors are isolated and logged. Returns a promise only if some handler did;
   * the caller may ignore it (observers never block anything but their own chain).
   */
  observe<N extends HookName>(name: N, event: HookEvent<N>): void | Promise<void> {
    const active = this.#active.get(name);
    if (active === undefined || active.length === 0) return;
    for (let i = 0; i < active.length; i++) {
      const e = active[i]!;
      let r: unknown;
      try {
        r = e.handler(event);
      } catch (err) {
        this.#logFailure(e, err);
        continue;
      }
      if (isThenable(r)) return this.#observeRest(active, i, r, event);
    }
  }

  async #observeRest(active: Active, i: number, pending: PromiseLike<unknown>, event: unknown): Promise<void> {
    try {
      await pending;
    } catch (err) {
      this.#logFailure(active[i]!, err);
    }
    for (let k = i + 1; k < active.length; k++) {
      const e = active[k]!;
      try {
        await e.handler(event);
      } catch (err) {
        this.#logFailure(e, err);
      }
    }
  }

  /**
   * Fold a decision through the handlers. A handler that throws ends the chain with `onError` (fail
   * closed for auth and ACL) — or, when `onError` is undefined, is logged and skipped.
   */
  decide<N extends HookName>(
    name: N,
    event: HookEvent<N>,
    initial: HookResult<N> | undefined,
    onError?: HookResult<N>,
  ): HookResult<N> | undefined | Promise<HookResult<N> | undefined> {
    const active = this.#active.get(name);
    if (active === undefined || active.length === 0) return initial;
    let acc = initial;
    for (let i = 0; i < active.length; i++) {
      const e = active[i]!;
      let r: unknown;
      try {
        r = e.handler(event, acc);
      } catch (err) {
        this.#logFailure(e, err);
        if (onError !== undefined) return onError;
        continue;
      }
      if (isThenable(r)) return this.#decideRest(active, i, r, event, acc, onError);
      if (r !== undefined && r !== null) {
        const d = r as HookDecision<HookResult<N>>;
        acc = d.result;
        if (!d.proceed) return acc;
      }
    }
    return acc;
  }

  async #decideRest<R>(active: Active, i: number, pending: PromiseLike<unknown>, event: unknown, acc: R | undefined, onError: R | undefined): Promise<R | undefined> {
    let k = i;
    let r: unknown;
    try {
      r = await pending;
    } catch (err) {
      this.#logFailure(active[k]!, err);
      if (onError !== undefined) return onError;
      r = undefined;
    }
    for (;;) {
      if (r !== undefined && r !== null) {
        const d = r as HookDecision<R>;
        acc = d.result;
        if (!d.proceed) return acc;
      }
      k++;
      if (k >= active.length) return acc;
      const e = active[k]!;
      try {
        r = await e.handler(event, acc);
      } catch (err) {
        this.#logFailure(e, err);
        if (onError !== undefined) return onError;
        r = undefined;
      }
    }
  }

  /**
   * Pass a value through the transformers. A handler returns the value (or a replacement) or null to
   * drop it; undefined counts as "unchanged". A handler that throws is logged and skipped.
   */
  transform<N extends HookName>(name: N, value: HookResult<N>, event: HookEvent<N>): HookResult<N> | null | Promise<HookResult<N> | null> {
    const active = this.#active.get(name);
    if (active === undefined || active.length === 0) return value;
    let v = value;
    for (let i = 0; i < active.length; i++) {
      const e = active[i]!;
      let r: unknown;
      try {
        r = e.handler(v, event);
      } catch (err) {
        this.#logFailure(e, err);
        continue;
      }
      if (isThenable(r)) return this.#transformRest(active, i, r, v, event);
      if (r === null) return null;
      if (r !== undefined) v = r as HookResult<N>;
    }
    return v;
  }

  async #transformRest<R>(active: Active, i: number, pending: PromiseLike<unknown>, v: R, event: unknown): Promise<R | null> {
    let k = i;
    let r: unknown;
    try {
      r = await pending;
    } catch (err) {
      this.#logFailure(active[k]!, err);
      r = undefined;
    }
    for (;;) {
      if (r === null) return null;
      if (r !== undefined) v = r as R;
      k++;
      if (k >= active.length) return v;
      const e = active[k]!;
      try {
        r = await e.handler(v, event);
      } catch (err) {
        this.#logFailure(e, err);
        r = undefined;
      }
    }
  }
}
