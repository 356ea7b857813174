/**
 * One table of coded errors. Each has a stable code, the HTTP status the admin API answers with, and,
 * where a client sees it, the MQTT 5 reason code.
 */
import { ReasonCode } from './reason-codes.js';

export const ErrorCodes = {
  // configuration and start-up
  ERR_CONFIG: { status: 400, reasonCode: undefined, text: 'invalid configuration' },
  // plugins
  ERR_PLUGIN_NOT_FOUND: { status: 404, reasonCode: undefined, text: 'plugin not found' },
  ERR_PLUGIN_INVALID: { status: 400, reasonCode: undefined, text: 'invalid plugin definition' },
  ERR_PLUGIN_API_VERSION: { status: 409, reasonCode: undefined, text: 'plugin API version not supported' },
  ERR_PLUGIN_DEPENDENCY: { status: 409, reasonCode: undefined, text: 'plugin dependency not satisfied' },
  ERR_PLUGIN_IMMUTABLE: { status: 409, reasonCode: undefined, text: 'the plugin is immutable' },
  ERR_PLUGIN_REFUSED: { status: 409, reasonCode: undefined, text: 'the plugin refused to stop' },
  ERR_PLUGIN_STATE: { status: 409, reasonCode: undefined, text: 'the plugin is not in a state that allows this' },
  ERR_PLUGIN_FAILED: { status: 503, reasonCode: undefined, text: 'the plugin failed' },
  ERR_EXTENSION_TAKEN: { status: 409, reasonCode: undefined, text: 'extension point already provided by another plugin' },
  // admin operations
  ERR_NOT_FOUND: { status: 404, reasonCode: undefined, text: 'not found' },
  ERR_BAD_REQUEST: { status: 400, reasonCode: undefined, text: 'bad request' },
  ERR_UNAVAILABLE: { status: 503, reasonCode: ReasonCode.ServerUnavailable, text: 'unavailable' },
  // protocol (a client sees these as reason codes)
  ERR_MALFORMED_PACKET: { status: 400, reasonCode: ReasonCode.MalformedPacket, text: 'malformed packet' },
  ERR_PROTOCOL: { status: 400, reasonCode: ReasonCode.ProtocolError, text: 'protocol error' },
  ERR_PACKET_TOO_LARGE: { status: 400, reasonCode: ReasonCode.PacketTooLarge, text: 'packet too large' },
  ERR_TOPIC_ALIAS_INVALID: { status: 400, reasonCode: ReasonCode.TopicAliasInvalid, text: 'topic alias invalid' },
  ERR_TOPIC_NAME_INVALID: { status: 400, reasonCode: ReasonCode.TopicNameInvalid, text: 'topic name invalid' },
  ERR_TOPIC_FILTER_INVALID: { status: 400, reasonCode: ReasonCode.TopicFilterInvalid, text: 'topic filter invalid' },
  ERR_RECEIVE_MAXIMUM_EXCEEDED: { status: 400, reasonCode: ReasonCode.ReceiveMaximumExceeded, text: 'receive maximum exceeded' },
  ERR_QOS_NOT_SUPPORTED: { status: 400, reasonCode: ReasonCode.QoSNotSupported, text: 'QoS not supported' },
  ERR_RETAIN_NOT_SUPPORTED: { status: 400, reasonCode: ReasonCode.RetainNotSupported, text: 'retain not supported' },
  ERR_NOT_AUTHORIZED: { status: 401, reasonCode: ReasonCode.NotAuthorized, text: 'not authorized' },
  ERR_QUOTA_EXCEEDED: { status: 400, reasonCode: ReasonCode.QuotaExceeded, text: 'quota exceeded' },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class RmqttError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly reasonCode: number | undefined;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; reasonCode?: number }) {
    const entry = ErrorCodes[code];
    super(message ?? entry.text, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RmqttError';
    this.code = code;
    this.status = entry.status;
    this.reasonCode = options?.reasonCode ?? entry.reasonCode;
  }
}

export function isRmqttError(err: unknown): err is RmqttError {
  return err instanceof Error && (err as { name?: string }).name === 'RmqttError' && typeof (err as RmqttError).code === 'string';
}
