/**
 * Dependency-injection tokens and the tsyringe helpers the kernel's composition root uses. Tokens are
 * `Symbol.for(...)` so that a second installed copy of this package still matches. Plugins never need
 * these: they get everything through their context.
 */
export { container, inject, injectable, singleton, type DependencyContainer } from 'tsyringe';

export const TOKENS = {
  Config: Symbol.for('@rmqtt-ts/config'),
  Logger: Symbol.for('@rmqtt-ts/logger'),
  Metrics: Symbol.for('@rmqtt-ts/metrics'),
  Hooks: Symbol.for('@rmqtt-ts/hooks'),
  Scheduler: Symbol.for('@rmqtt-ts/scheduler'),
  Extensions: Symbol.for('@rmqtt-ts/extensions'),
  Router: Symbol.for('@rmqtt-ts/router'),
  Sessions: Symbol.for('@rmqtt-ts/sessions'),
  Broker: Symbol.for('@rmqtt-ts/broker'),
  Plugins: Symbol.for('@rmqtt-ts/plugins'),
  Control: Symbol.for('@rmqtt-ts/control'),
} as const;
