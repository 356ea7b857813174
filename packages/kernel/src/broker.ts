/**
 * The composition root: builds the kernel's services in a DI container, starts plugins and listeners,
 * and shuts everything down in reverse order.
 */
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import {
  RmqttError,
  TOKENS,
  container as rootContainer,
  type BrokerServices,
  type DependencyContainer,
  type Logger,
  type AnyPluginDefinition,
  type SessionSnapshot,
} from '@rmqtt-ts/plugin-api';
import type { BrokerConfig, LoadedConfig } from './config/index.js';
import { ConnectionRegistry } from './connection/registry.js';
import { KernelControl } from './control.js';
import { ExtensionSlots } from './extensions/slots.js';
import { HookRegistry } from './hooks/registry.js';
import type { Kernel } from './kernel.js';
import { MqttListener, openFileLimit } from './listener/listener.js';
import { BrokerMetrics } from './metrics/metrics.js';
import { PluginManager } from './plugins/manager.js';
import { Publisher } from './publish/publisher.js';
import { SharedSelector, SubscriptionLimits, TopicTrie } from './router/index.js';
import { SessionJournal } from './session/journal.js';
import { SessionRegistry } from './session/registry.js';
import { reindexRoutes } from './session/subscriptions.js';
import { DeadlineScheduler } from './time/scheduler.js';
import { VERSION } from './version.js';

export interface BrokerOptions {
  /** A loaded config (its warnings are logged) or a typed one. */
  config: LoadedConfig | BrokerConfig;
  logger?: Logger;
  /** Plugin definitions known without resolving a package (built in, or given by a test). */
  plugins?: readonly AnyPluginDefinition[];
  /** Base of relative paths and of plugin lookup (`<cwd>/node_modules` first). Default process.cwd(). */
  cwd?: string;
  /** Where plugin packages are looked up after cwd: the broker's own install locations. */
  searchPaths?: readonly string[];
  env?: NodeJS.ProcessEnv;
}

function isLoaded(c: LoadedConfig | BrokerConfig): c is LoadedConfig {
  return (c as LoadedConfig).config !== undefined && (c as LoadedConfig).warnings !== undefined;
}

export class Broker implements Kernel {
  readonly nodeId: number;
  readonly config: BrokerConfig;
  readonly logger: Logger;
  readonly metrics: BrokerMetrics;
  readonly hooks: HookRegistry;
  readonly scheduler: DeadlineScheduler;
  readonly ext: ExtensionSlots;
  readonly sessions: SessionRegistry;
  readonly connections: ConnectionRegistry;
  readonly publisher: Publisher;
  readonly selector: SharedSelector;
  readonly limits: SubscriptionLimits;
  readonly journal: SessionJournal;
  readonly plugins: PluginManager;
  readonly control: KernelControl;
  readonly services: BrokerServices;
  readonly container: DependencyContainer;
  readonly listeners: MqttListener[] = [];
  startedAt = 0;
  #closing = false;
  /**
   * Message ids are unique across restarts (stored sessions and messages refer to them): they count
   * up from the start time in microseconds, which a restarted broker has always passed.
   */
  #messageId = Date.now() * 1000;
  /** Sessions being restored from a newly provided SessionStore. */
  #restoring: Promise<void> = Promise.resolve();
  readonly #warnings: readonly string[];
  readonly #builtins: readonly AnyPluginDefinition[];

  constructor(options: BrokerOptions) {
    const loaded = isLoaded(options.config) ? options.config : undefined;
    this.config = loaded ? loaded.config : (options.config as BrokerConfig);
    this.#warnings = loaded?.warnings ?? [];
    this.nodeId = this.config.node.id;
    this.logger = options.logger ?? (pino({ level: this.config.log.level }) as unknown as Logger);
    const cwd = options.cwd ?? process.cwd();

    this.metrics = new BrokerMetrics();
    this.hooks = new HookRegistry(this.logger);
    this.scheduler = new DeadlineScheduler(this.logger);
    this.ext = new ExtensionSlots(new TopicTrie());
    this.selector = new SharedSelector(this.ext.sharedSubscription, this.nodeId);
    this.limits = new SubscriptionLimits();
    this.journal = new SessionJournal(this.ext, this.logger, this.metrics);
    this.sessions = new SessionRegistry(this);
    this.connections = new ConnectionRegistry(this);
    this.publisher = new Publisher(this);
    this.ext.onChange((name, previous) => this.#extensionChanged(name, previous));
    this.connections.onHandshakeDone = (name) => this.listeners.find((l) => l.config.name === name)?.admitWaiting();
    this.metrics.refresh = () => this.#refreshGauges();

    const self = this;
    this.services = {
      nodeId: this.nodeId,
      version: VERSION,
      get startedAt() {
        return self.startedAt;
      },
      get control() {
        return self.control;
      },
      metrics: this.metrics,
      scheduler: this.scheduler,
      cluster: {
        deliverForwarded: (msg) => this.publisher.deliverForwarded(msg),
        exportSession: (clientId) => {
          const s = this.sessions.get(clientId);
          if (s === undefined) return undefined;
          const snap = s.snapshot(this.nodeId);
          this.sessions.kick(clientId, 0x8e, 'session taken over by another node', true);
          return snap;
        },
      },
      createMessage: (input) =>
        this.publisher.createMessage({
          topic: input.topic,
          payload: input.payload,
          qos: input.qos ?? 0,
          retain: input.retain ?? false,
          properties: input.properties ?? {},
          protoVer: undefined,
          listenerExpiryS: input.expirySeconds,
          from: { type: input.from?.type ?? 'system', clientId: input.from?.clientId ?? input.clientId ?? 'system', username: input.from?.username, ip: input.from?.ip },
        }),
      publish: async (message) => {
        const r = await this.publisher.publish(message, undefined, true);
        return { matched: r.matched };
      },
    };
    this.plugins = new PluginManager({
      hooks: this.hooks,
      ext: this.ext,
      logger: this.logger,
      services: this.services,
      configDir: this.config.plugins.dir,
      cwd,
      searchPaths: [...(options.searchPaths ?? []), dirname(fileURLToPath(import.meta.url))],
      env: options.env ?? process.env,
    });
    this.control = new KernelControl(this, this.plugins);
    this.#builtins = options.plugins ?? [];

    // the container: how apps and plugins' composition roots find the kernel's services by token
    this.container = rootContainer.createChildContainer();
    this.container.registerInstance(TOKENS.Config, this.config);
    this.container.registerInstance(TOKENS.Logger, this.logger);
    this.container.registerInstance(TOKENS.Metrics, this.metrics);
    this.container.registerInstance(TOKENS.Hooks, this.hooks);
    this.container.registerInstance(TOKENS.Scheduler, this.scheduler);
    this.container.registerInstance(TOKENS.Extensions, this.ext);
    this.container.registerInstance(TOKENS.Sessions, this.sessions);
    this.container.registerInstance(TOKENS.Plugins, this.plugins);
    this.container.registerInstance(TOKENS.Control, this.control);
    this.container.registerInstance(TOKENS.Broker, this);
  }

  get closing(): boolean {
    return this.#closing;
  }

  nextMessageId(): number {
    return ++this.#messageId;
  }

  #extensionChanged(name: string, previous: unknown): void {
    if (name === 'sharedSubscription') this.selector.setPolicy(this.ext.sharedSubscription);
    if (name === 'router' && previous !== this.ext.router) reindexRoutes(this);
    if (name === 'sessionStore') {
      const restoring = this.#restoring.then(() => this.#restoreSessions());
      // at start-up a store that cannot be read stops the broker (start() awaits it); later it is logged
      if (this.plugins.running) restoring.catch((err: unknown) => this.logger.error({ err }, 'restoring sessions failed'));
      this.#restoring = restoring;
    }
    this.logger.info({ extension: name, provider: this.ext.owner(name as never) ?? 'kernel' }, 'extension point changed');
  }

  /** Sessions a newly provided SessionStore kept, back as offline sessions. */
  async #restoreSessions(): Promise<void> {
    const store = this.ext.sessionStore;
    let snaps: SessionSnapshot[];
    try {
      snaps = await store.load();
    } catch (err) {
      throw new RmqttError('ERR_PLUGIN_FAILED', `the session store provided by "${this.ext.owner('sessionStore') ?? 'kernel'}" could not be read: ${(err as Error).message}`, { cause: err });
    }
    const now = Date.now();
    for (const snap of snaps) {
      if (this.sessions.get(snap.clientId) !== undefined) continue;
      const listener = this.config.listeners.find((l) => l.name === snap.connectInfo.listener) ?? this.config.listeners[0]!;
      this.sessions.restore(snap, listener, now);
    }
    if (snaps.length > 0) this.logger.info({ sessions: snaps.length }, 'sessions restored from the session store');
  }

  #refreshGauges(): void {
    const g = this.metrics.gauges;
    let topics = 0;
    for (const _ of this.ext.router.routes()) topics++;
    g.topics.set(topics);
    g.routes.set(topics);
    const store = this.ext.retainStore;
    if (store !== null) {
      const n = store.count();
      if (typeof n === 'number') g.retained.set(n);
      else void n.then((v) => g.retained.set(v), () => undefined);
    } else {
      g.retained.set(0);
    }
  }

  /** Start plugins (as plugins.default_startups lists them), then the listeners. */
  async start(): Promise<void> {
    for (const w of this.#warnings) this.logger.warn(w);
    for (const def of this.#builtins) this.plugins.register(def);
    await this.plugins.startDefaults(this.config.plugins.defaultStartups.filter((n) => !this.config.plugins.disabledDefaultStartups.includes(n)));
    this.plugins.running = true;
    // stored sessions are back before the first client can connect
    await this.#restoring;
    const fdLimit = openFileLimit();
    for (const cfg of this.config.listeners) {
      if (!cfg.enable) continue;
      const l = new MqttListener(this, cfg, fdLimit);
      await l.start();
      this.listeners.push(l);
      const a = l.address();
      this.logger.info({ listener: cfg.name, addr: `${a.host}:${a.port}`, maxConnections: l.maxConnections }, 'listening');
    }
    this.connections.start();
    this.startedAt = Date.now();
  }

  /** The address a listener is bound to (by name, e.g. `tcp.external`), or the first one. */
  address(name?: string): { host: string; port: number } {
    const l = name === undefined ? this.listeners[0] : this.listeners.find((x) => x.config.name === name);
    if (l === undefined) throw new Error(`no listener ${name ?? ''}`);
    return l.address();
  }

  /**
   * Shut down: stop accepting, close every connection (v5 DISCONNECT 0x8B; wills are published as for
   * any server-side close), stop plugins in reverse order, write pending session changes, stop timers.
   */
  async stop(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const closing = this.listeners.map((l) => l.stop());
    for (const conn of [...this.connections.values()]) conn.disconnect(0x8b, 'server shutting down');
    this.sessions.publishPendingWills();
    await Promise.all(closing);
    // a session store that is down gets a few seconds to come back; what it did not take is logged
    await this.journal.flushed(SHUTDOWN_STORE_WAIT_MS);
    await this.plugins.shutdown();
    await this.journal.flushed(SHUTDOWN_STORE_WAIT_MS);
    this.connections.stop();
    this.scheduler.close();
    this.logger.info('broker stopped');
  }
}

/** How long shutdown waits for a failing session store. */
const SHUTDOWN_STORE_WAIT_MS = 5_000;

export async function createBroker(options: BrokerOptions): Promise<Broker> {
  return new Broker(options);
}
