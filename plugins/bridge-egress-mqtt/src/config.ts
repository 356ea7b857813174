/** Config of the egress bridge: RMQTT's rmqtt-bridge-egress-mqtt.toml keys. */
import type { ConfigSchema, QoS } from '@rmqtt-ts/plugin-api';
import { parseBridgeList, topicTemplate, type BridgeConnection, type TableReader, type TopicTemplate } from '@rmqtt-ts/plugin-api/bridge';

export interface EgressEntry {
  /** Local messages matching this filter are forwarded. */
  filter: string;
  /** QoS on the remote side; undefined = the message's own. */
  qos: QoS | undefined;
  /** Retain flag on the remote side; undefined = the message's own. */
  retain: boolean | undefined;
  /** The remote topic, `${local.topic}` = the local topic without its first `skipLevels` levels. */
  topic: TopicTemplate;
  skipLevels: number;
}

export interface EgressBridge extends BridgeConnection {
  /** Per client: messages waiting or handed to the client and not yet acknowledged. */
  messageChannelCapacity: number;
  entries: EgressEntry[];
}

export interface EgressConfig {
  bridges: unknown[];
}

function parseEntry(r: TableReader): EgressEntry {
  const local = r.table('local') ?? r.fail('local', 'local.topic_filter', undefined);
  const remote = r.table('remote') ?? r.fail('remote', 'remote.topic', undefined);
  const filter = local.topicFilter('topic_filter');
  local.done();
  const entry: EgressEntry = {
    filter,
    qos: remote.qos('qos'),
    retain: remote.bool('retain'),
    topic: topicTemplate(remote.topicTemplate('topic', ['${local.topic}']), '${local.topic}'),
    skipLevels: remote.int('skip_levels', 0, 65535, 0),
  };
  remote.done();
  r.done();
  return entry;
}

/** Read and check `bridges` (paths of TLS files are relative to `cwd`); throws naming the key. */
export function parseBridges(value: unknown, cwd: string = process.cwd()): EgressBridge[] {
  return parseBridgeList(value, cwd, (r, conn) => ({
    ...conn,
    messageChannelCapacity: r.int('message_channel_capacity', 1, 100_000_000, 100_000),
    entries: r.tables('entries').map(parseEntry),
  }));
}

export const configSchema: ConfigSchema = {
  bridges: {
    doc: '[[bridges]]: remote brokers, each with [[bridges.entries]] mapping local topic filters to remote topics.',
    format: function bridges(value: unknown): void {
      parseBridges(value);
    },
    default: [],
    sensitiveKeys: ['password'],
  },
};
