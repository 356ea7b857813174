/**
 * @rmqtt-ts/plugin-shared-subscription — chooses the kernel's shared-subscription strategy. Without it
 * (or once stopped) shared subscriptions still work, with round_robin.
 */
import { definePlugin } from '@rmqtt-ts/plugin-api';
import { configSchema, type SharedSubscriptionConfig } from './config.js';

export { configSchema, STRATEGIES, type SharedSubscriptionConfig } from './config.js';

export default definePlugin<SharedSubscriptionConfig>({
  name: 'shared-subscription',
  apiVersion: '^1.0.0',
  description: 'Shared-subscription strategy',
  configSchema,
  create(ctx) {
    const policy = (c: SharedSubscriptionConfig) => ({ strategy: c.strategy, stickyCacheSize: c.sticky_cache_size });
    return {
      init() {
        ctx.extensions.provide('sharedSubscription', policy(ctx.config));
      },
      reload(config) {
        ctx.extensions.provide('sharedSubscription', policy(config));
      },
      attrs() {
        return { strategy: ctx.config.strategy, sticky_cache_size: ctx.config.sticky_cache_size };
      },
    };
  },
});
