/** Config of the shared-subscription plugin: RMQTT's rmqtt-shared-subscription.toml keys. */
import type { ConfigSchema, SharedStrategy } from '@rmqtt-ts/plugin-api';

export interface SharedSubscriptionConfig {
  strategy: SharedStrategy;
  sticky_cache_size: number;
}

export const STRATEGIES: readonly SharedStrategy[] = [
  'random',
  'round_robin',
  'round_robin_per_group',
  'sticky',
  'local',
  'hash_clientid',
  'hash_topic',
];

export const configSchema: ConfigSchema = {
  strategy: {
    doc: 'How one member of a $share group is chosen for each message.',
    format: STRATEGIES as SharedStrategy[],
    default: 'round_robin',
  },
  sticky_cache_size: {
    doc: 'Publisher-to-member bindings kept by the sticky strategy (least recently used evicted).',
    format: 'nat',
    default: 100000,
  },
};
