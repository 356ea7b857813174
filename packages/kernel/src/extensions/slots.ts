/**
 * The extension points in force. Each slot holds the kernel's default until a started plugin provides
 * an implementation; stopping the plugin restores the default. One provider per slot at a time.
 */
import {
  RmqttError,
  type ClusterTransport,
  type ExtensionName,
  type ExtensionTypes,
  type MessageStore,
  type RetainStore,
  type Router,
  type SessionStore,
  type SharedSubscriptionPolicy,
} from '@rmqtt-ts/plugin-api';
import { LocalClusterTransport } from './local-cluster.js';
import { MemorySessionStore } from './memory-session-store.js';

export const DEFAULT_SHARED_POLICY: SharedSubscriptionPolicy = Object.freeze({ strategy: 'round_robin', stickyCacheSize: 100_000 });

type Defaults = { [N in ExtensionName]: ExtensionTypes[N] | null };

export class ExtensionSlots {
  retainStore: RetainStore | null = null;
  sessionStore: SessionStore;
  messageStore: MessageStore | null = null;
  router: Router;
  cluster: ClusterTransport;
  sharedSubscription: SharedSubscriptionPolicy = DEFAULT_SHARED_POLICY;

  readonly #defaults: Defaults;
  readonly #owners = new Map<ExtensionName, string>();
  readonly #listeners: ((name: ExtensionName, previous: unknown) => void)[] = [];

  constructor(defaultRouter: Router) {
    this.router = defaultRouter;
    this.sessionStore = new MemorySessionStore();
    this.cluster = new LocalClusterTransport();
    this.#defaults = {
      retainStore: null,
      sessionStore: this.sessionStore,
      messageStore: null,
      router: defaultRouter,
      clusterTransport: this.cluster,
      sharedSubscription: DEFAULT_SHARED_POLICY,
    };
  }

  /** Called after a slot changed (the kernel migrates routes, updates CONNACK properties, ...). */
  onChange(listener: (name: ExtensionName, previous: unknown) => void): void {
    this.#listeners.push(listener);
  }

  owner(name: ExtensionName): string | undefined {
    return this.#owners.get(name);
  }

  get<N extends ExtensionName>(name: N): ExtensionTypes[N] | null {
    switch (name) {
      case 'retainStore':
        return this.retainStore as ExtensionTypes[N] | null;
      case 'sessionStore':
        return this.sessionStore as ExtensionTypes[N];
      case 'messageStore':
        return this.messageStore as ExtensionTypes[N] | null;
      case 'router':
        return this.router as ExtensionTypes[N];
      case 'clusterTransport':
        return this.cluster as ExtensionTypes[N];
      case 'sharedSubscription':
        return this.sharedSubscription as ExtensionTypes[N];
    }
    return null;
  }

  install<N extends ExtensionName>(owner: string, name: N, impl: ExtensionTypes[N]): void {
    const held = this.#owners.get(name);
    if (held !== undefined && held !== owner) {
      throw new RmqttError('ERR_EXTENSION_TAKEN', `${owner} cannot provide ${name}: ${held} already provides it`);
    }
    this.#owners.set(name, owner);
    this.#set(name, impl);
  }

  /** Restore the defaults of every slot an owner provided. */
  uninstall(owner: string): ExtensionName[] {
    const released: ExtensionName[] = [];
    for (const [name, o] of [...this.#owners]) {
      if (o !== owner) continue;
      this.#owners.delete(name);
      this.#set(name, this.#defaults[name]);
      released.push(name);
    }
    return released;
  }

  #set(name: ExtensionName, impl: unknown): void {
    const previous = this.get(name);
    switch (name) {
      case 'retainStore':
        this.retainStore = impl as RetainStore | null;
        break;
      case 'sessionStore':
        this.sessionStore = impl as SessionStore;
        break;
      case 'messageStore':
        this.messageStore = impl as MessageStore | null;
        break;
      case 'router':
        this.router = impl as Router;
        break;
      case 'clusterTransport':
        this.cluster = impl as ClusterTransport;
        break;
      case 'sharedSubscription':
        this.sharedSubscription = impl as SharedSubscriptionPolicy;
        break;
    }
    for (const l of this.#listeners) l(name, previous);
  }
}
