/** Config of the ingress bridge: RMQTT's rmqtt-bridge-ingress-mqtt.toml keys. */
import { isValidTopicFilter, type ConfigSchema, type QoS } from '@rmqtt-ts/plugin-api';
import { parseBridgeList, topicTemplate, type BridgeConnection, type TableReader, type TopicTemplate } from '@rmqtt-ts/plugin-api/bridge';

export interface IngressEntry {
  /** What the clients subscribe to on the remote broker (a `$share/{group}/…` filter spreads the load). */
  remoteFilter: string;
  remoteQos: QoS;
  /** Whether the remote filter is a shared subscription (then every client subscribes; else one). */
  shared: boolean;
  /** Local topic; `${remote.topic}` = the remote topic without its first `skipLevels` levels. */
  topic: TopicTemplate;
  skipLevels: number;
  /** QoS of the local message; undefined = the remote message's. */
  qos: QoS | undefined;
  /** Retain flag of the local message; undefined = the remote message's. */
  retain: boolean | undefined;
}

export interface IngressBridge extends BridgeConnection {
  /** Expiry of the local messages that carry none (ms; 0 = never). */
  expiryInterval: number;
  entries: IngressEntry[];
}

export interface IngressConfig {
  bridges: unknown[];
}

const SHARE = /^\$share\/([^/]+)\/(.+)$/;

function parseEntry(r: TableReader): IngressEntry {
  const remote = r.table('remote') ?? r.fail('remote', 'remote.topic', undefined);
  const local = r.table('local') ?? r.fail('local', 'local.topic', undefined);
  const expected = 'a topic filter such as "remote/#" or "$share/group/remote/#"';
  const remoteFilter = remote.string('topic') ?? remote.fail('topic', expected, undefined);
  const share = SHARE.exec(remoteFilter);
  const valid = share === null ? isValidTopicFilter(remoteFilter) : isValidTopicFilter(share[2]!) && !/[+#]/.test(share[1]!);
  if (!valid) remote.fail('topic', expected, remoteFilter);
  const entry: IngressEntry = {
    remoteFilter,
    remoteQos: remote.qos('qos', 0),
    shared: share !== null,
    topic: topicTemplate(local.topicTemplate('topic', ['${remote.topic}']), '${remote.topic}'),
    skipLevels: local.int('skip_levels', 0, 65535, 0),
    qos: local.qos('qos'),
    retain: local.bool('retain'),
  };
  remote.done();
  local.done();
  r.done();
  return entry;
}

/** Read and check `bridges` (paths of TLS files are relative to `cwd`); throws naming the key. */
export function parseBridges(value: unknown, cwd: string = process.cwd()): IngressBridge[] {
  return parseBridgeList(value, cwd, (r, conn) => ({ ...conn, expiryInterval: r.duration('expiry_interval', 300_000), entries: r.tables('entries').map(parseEntry) }));
}

export const configSchema: ConfigSchema = {
  bridges: {
    doc: '[[bridges]]: remote brokers, each with [[bridges.entries]] mapping remote topic filters to local topics.',
    format: function bridges(value: unknown): void {
      parseBridges(value);
    },
    default: [],
    sensitiveKeys: ['password'],
  },
};
