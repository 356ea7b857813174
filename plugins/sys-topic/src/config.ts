/** Config of the sys-topic plugin: RMQTT's rmqtt-sys-topic.toml keys. */
import type { ConfigSchema, QoS } from '@rmqtt-ts/plugin-api';

export interface SysTopicConfig {
  publish_qos: QoS;
  /** ms between two `stats` / `metrics` publishes. */
  publish_interval: number;
  /** ms; 0 = the messages never expire. */
  message_expiry_interval: number;
}

export const configSchema: ConfigSchema = {
  publish_qos: { doc: 'QoS of $SYS messages.', format: 'integer 0..2', default: 1 },
  publish_interval: { doc: 'Period of $SYS/brokers/{node}/stats and …/metrics (at least 1s).', format: 'duration', default: '1m' },
  message_expiry_interval: { doc: 'Expiry of $SYS messages (0 = never).', format: 'duration', default: '5m' },
};
