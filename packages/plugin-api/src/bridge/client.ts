/**
 * One MQTT client of a bridge, on mqtt.js (handed in by the plugin: the plugin API has no MQTT client
 * dependency). It connects, reconnects every `reconnect_interval`, and reports what happens to the log
 * without flooding it: the first failure of a streak, a different failure, or the same one once a minute.
 */
import type { Logger } from '../services.js';
import type { MqttClientOptions } from './connection.js';

/** What the bridge uses of an mqtt.js MqttClient. */
export interface MqttLikeClient {
  readonly connected: boolean;
  /** QoS 1/2 messages (and PUBRELs) sent and not yet acknowledged, by message id. */
  readonly outgoing: Record<number, unknown>;
  once(event: 'outgoingEmpty', fn: () => void): unknown;
  removeListener(event: 'outgoingEmpty', fn: () => void): unknown;
  on(event: 'connect', fn: (connack: { sessionPresent?: boolean; properties?: { receiveMaximum?: number; maximumPacketSize?: number } }) => void): unknown;
  on(event: 'close' | 'offline' | 'reconnect' | 'end', fn: () => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
  on(event: 'message', fn: (topic: string, payload: Buffer, packet: MqttPublishPacket) => void): unknown;
  on(event: 'packetreceive', fn: (packet: { cmd: string; messageId?: number }) => void): unknown;
  publish(topic: string, payload: Buffer, options: MqttPublishOptions, callback: (err?: Error) => void): unknown;
  subscribe(topic: string, options: { qos: 0 | 1 | 2; rap?: boolean }, callback: (err: Error | null, granted?: Array<{ topic: string; qos: number }>) => void): unknown;
  end(force: boolean, callback: () => void): unknown;
  /**
   * Called for each incoming message before its last acknowledgement (QoS 0: on arrival; QoS 1: before
   * PUBACK; QoS 2: on PUBREL, before PUBCOMP); the acknowledgement waits for `callback`.
   */
  handleMessage(packet: MqttPublishPacket, callback: (err?: Error) => void): void;
}

export interface MqttPublishPacket {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  dup: boolean;
  messageId?: number;
  properties?: {
    payloadFormatIndicator?: boolean;
    messageExpiryInterval?: number;
    contentType?: string;
    responseTopic?: string;
    correlationData?: Buffer;
    userProperties?: Record<string, string | string[]>;
  };
}

export interface MqttPublishOptions {
  qos: 0 | 1 | 2;
  retain: boolean;
  properties?: MqttPublishPacket['properties'];
}

/** MQTT 5: decides the PUBACK / PUBREC of a QoS 1/2 message, `done(0)` once it is handled or a reason code (mqtt.js calls it for MQTT 5 only). */
export type AckHandler = (topic: string, payload: Buffer, packet: MqttPublishPacket, done: (code: number) => void) => void;

/** mqtt.js `connect`. */
export type MqttConnect = (options: MqttClientOptions & { customHandleAcks?: AckHandler }) => MqttLikeClient;

const REPEAT_LOG_MS = 60_000;

export class BridgeLink {
  readonly client: MqttLikeClient;
  readonly clientId: string;
  /** Times the connection went up. */
  connects = 0;
  /** Failed attempts and lost connections. */
  failures = 0;
  lastError: string | undefined;
  #loggedError: string | undefined;
  #loggedAt = 0;
  #closed = false;

  constructor(
    connect: MqttConnect,
    options: MqttClientOptions & { customHandleAcks?: AckHandler },
    readonly logger: Logger,
    handlers: { up?: (connack: { receiveMaximum: number | undefined; sessionPresent: boolean }) => void; down?: () => void } = {},
  ) {
    this.clientId = options.clientId;
    const client = connect(options);
    this.client = client;
    let up = false;
    client.on('connect', (connack) => {
      up = true;
      this.connects++;
      this.lastError = undefined;
      this.#loggedError = undefined;
      logger.info({ client_id: this.clientId }, this.connects === 1 ? 'bridge connected' : 'bridge reconnected');
      handlers.up?.({ receiveMaximum: connack.properties?.receiveMaximum, sessionPresent: connack.sessionPresent === true });
    });
    client.on('error', (err) => {
      this.failures++;
      this.#report(err.message);
    });
    client.on('close', () => {
      if (!up) return;
      up = false;
      handlers.down?.();
      if (!this.#closed) {
        this.failures++;
        this.#report('connection lost');
      }
    });
  }

  get connected(): boolean {
    return this.client.connected;
  }

  #report(message: string): void {
    this.lastError = message;
    const now = Date.now();
    if (this.#closed || (message === this.#loggedError && now - this.#loggedAt < REPEAT_LOG_MS)) return;
    this.#loggedError = message;
    this.#loggedAt = now;
    this.logger.warn({ client_id: this.clientId, error: message }, 'bridge connection failed; retrying');
  }

  /**
   * Close. Connected, it gives the messages in flight up to `graceMs` to be acknowledged and then
   * disconnects cleanly (DISCONNECT: the remote does not publish the last will); messages still
   * unacknowledged then, or no connection, and it closes the socket at once.
   */
  close(graceMs = 1000): Promise<void> {
    this.#closed = true;
    const c = this.client;
    return new Promise((resolve) => {
      // mqtt.js's end() runs once: a second call only calls back
      const end = (force: boolean): void => void c.end(force, () => resolve());
      if (!c.connected) return end(true);
      if (Object.keys(c.outgoing).length === 0) return end(false);
      const onEmpty = (): void => {
        clearTimeout(timer);
        end(false);
      };
      const timer = setTimeout(() => {
        c.removeListener('outgoingEmpty', onEmpty);
        end(true);
      }, graceMs);
      c.once('outgoingEmpty', onEmpty);
    });
  }
}

/** Lets a repeated warning out at most once per `everyMs`, with how many times it happened meanwhile. */
export class LogThrottle {
  #last = Number.NEGATIVE_INFINITY;
  #count = 0;
  constructor(readonly everyMs = 10_000) {}

  /** Count one occurrence; returns how many to report now (0: stay quiet). */
  hit(now = Date.now()): number {
    this.#count++;
    if (now - this.#last < this.everyMs) return 0;
    const n = this.#count;
    this.#count = 0;
    this.#last = now;
    return n;
  }
}
