/**
 * The services every connection, session and handler works with. One object per broker, built by the
 * composition root (broker.ts); nothing on the per-packet path resolves anything from a container.
 */
import type { Logger } from '@rmqtt-ts/plugin-api';
import type { BrokerConfig } from './config/index.js';
import type { ConnectionRegistry } from './connection/registry.js';
import type { ExtensionSlots } from './extensions/slots.js';
import type { HookRegistry } from './hooks/registry.js';
import type { BrokerMetrics } from './metrics/metrics.js';
import type { Publisher } from './publish/publisher.js';
import type { SharedSelector, SubscriptionLimits } from './router/index.js';
import type { SessionJournal } from './session/journal.js';
import type { SessionRegistry } from './session/registry.js';
import type { DeadlineScheduler } from './time/scheduler.js';

export interface Kernel {
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
  /** True once shutdown began: no new connections or sessions. */
  readonly closing: boolean;
  nextMessageId(): number;
}
