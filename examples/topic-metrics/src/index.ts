/**
 * rmqtt-ts-plugin-topic-metrics — an example of a third-party plugin, written against
 * @rmqtt-ts/plugin-api alone. It counts the messages published under each configured topic filter and
 * shows the counts in its attrs (GET /api/v1/plugins/{node}/topic-metrics) and as broker counters
 * `topic_metrics.<filter>` (GET /api/v1/metrics).
 */
import { definePlugin, isValidTopicFilter, topicMatches, type ConfigSchema } from '@rmqtt-ts/plugin-api';

export interface TopicMetricsConfig {
  /** Topic filters to count messages under. */
  filters: string[];
}

export const configSchema: ConfigSchema = {
  filters: {
    doc: 'Topic filters whose published messages are counted.',
    format: function topicFilters(value: unknown): void {
      if (!Array.isArray(value) || !value.every((f) => typeof f === 'string' && isValidTopicFilter(f))) {
        throw new Error('expected a list of topic filters such as ["sensors/#", "alerts/+"]');
      }
    },
    default: ['#'],
  },
};

export default definePlugin<TopicMetricsConfig>({
  name: 'topic-metrics',
  apiVersion: '^1.0.0',
  description: 'Counts published messages per topic filter',
  configSchema,
  create(ctx) {
    let counts = new Map<string, number>(ctx.config.filters.map((f) => [f, 0]));
    return {
      init() {
        // a transform hook that passes every message on unchanged, counting those it matches
        ctx.hooks.on('message.publish', (message) => {
          for (const [filter, n] of counts) {
            if (topicMatches(filter, message.topic)) {
              counts.set(filter, n + 1);
              ctx.broker.metrics.inc(`topic_metrics.${filter}`);
            }
          }
          return message;
        });
      },
      reload(config) {
        // filters that stay keep their counts
        counts = new Map(config.filters.map((f) => [f, counts.get(f) ?? 0]));
      },
      attrs() {
        return { counts: Object.fromEntries(counts) };
      },
    };
  },
});
