/**
 * One client of an egress bridge and its channel: messages wait here until the client is connected and
 * has room, then are handed to mqtt.js. A message counts against the capacity from the moment it is
 * accepted until the remote acknowledges it (QoS 1/2) or it is written (QoS 0), so neither this queue
 * nor mqtt.js's own stores grow past `message_channel_capacity`. QoS 1/2 messages handed to mqtt.js and
 * not acknowledged are sent again by mqtt.js after a reconnect: at least once across a remote restart.
 */
import { BridgeLink, type MqttClientOptions, type MqttConnect, type MqttPublishOptions } from '@rmqtt-ts/plugin-api/bridge';
import type { Logger } from '@rmqtt-ts/plugin-api';

export interface Outgoing {
  topic: string;
  payload: Buffer;
  options: MqttPublishOptions;
}

/** With no Receive Maximum from the server (MQTT 3.1.1): QoS 1/2 messages in flight at once. */
const DEFAULT_WINDOW = 1024;
/**
 * QoS 0 messages handed to mqtt.js and not yet written. mqtt.js calls back at once while the socket
 * takes more and on 'drain' once it is full (one listener per message): past this many, messages wait
 * here, where they cost nothing, instead of as 'drain' listeners.
 */
const QOS0_WINDOW = 64;

export interface SinkStats {
  sent: number;
  failed: number;
}

export class Sink {
  readonly link: BridgeLink;
  readonly stats: SinkStats = { sent: 0, failed: 0 };
  #queue: Array<Outgoing | undefined> = [];
  #head = 0;
  /** Handed to mqtt.js, not yet done (all QoS). */
  #handed = 0;
  /** Of those, QoS 1/2 (bounded by the server's Receive Maximum). */
  #inflight = 0;
  /** Of those, QoS 0 (bounded by QOS0_WINDOW). */
  #unwritten = 0;
  /**
   * Connections so far. A QoS 0 message waiting for 'drain' when its connection closes is never called
   * back (mqtt.js forgets it with the socket): it is written off when the connection goes down, and a
   * late callback from an earlier connection is ignored.
   */
  #generation = 0;
  #window = DEFAULT_WINDOW;
  /**
   * Up from our 'connect' on, not mqtt.js's `connected`: that is true while mqtt.js is still sending the
   * messages it kept from the last connection, and a message handed then can be lost in its queue.
   */
  #up = false;
  #pumping = false;
  #closed = false;
  /** Messages written off at close (not sent, or not acknowledged). */
  #lostAtClose = 0;

  constructor(
    connect: MqttConnect,
    options: MqttClientOptions,
    readonly capacity: number,
    logger: Logger,
    private readonly onFailed: (clientId: string, error: Error) => void,
  ) {
    this.link = new BridgeLink(connect, options, logger, {
      up: ({ receiveMaximum }) => {
        this.#window = receiveMaximum ?? DEFAULT_WINDOW;
        this.#up = true;
        this.pump();
      },
      down: () => {
        this.#up = false;
        this.#generation++;
        this.#handed -= this.#unwritten;
        this.stats.failed += this.#unwritten;
        this.#unwritten = 0;
      },
    });
  }

  /** Messages accepted and not yet done. */
  get size(): number {
    return this.#queue.length - this.#head + this.#handed;
  }

  get waiting(): number {
    return this.#queue.length - this.#head;
  }

  get inFlight(): number {
    return this.#handed;
  }

  /** No room: a message pushed now would be refused. */
  get full(): boolean {
    return this.#closed || this.size >= this.capacity;
  }

  /** Accept a message; false when the channel is full (the caller drops and counts it). */
  push(o: Outgoing): boolean {
    if (this.full) return false;
    this.#queue.push(o);
    if (this.#queue.length - this.#head === 1) this.pump();
    return true;
  }

  pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      const client = this.link.client;
      while (this.#head < this.#queue.length && this.#up && !this.#closed) {
        const o = this.#queue[this.#head]!;
        const acked = o.options.qos > 0;
        if (acked ? this.#inflight >= this.#window : this.#unwritten >= QOS0_WINDOW) break;
        this.#queue[this.#head++] = undefined;
        this.#handed++;
        if (acked) this.#inflight++;
        else this.#unwritten++;
        const generation = this.#generation;
        client.publish(o.topic, o.payload, o.options, (err) => {
          if (acked) {
            // QoS 1/2 stay with mqtt.js across reconnects: called back once, acknowledged or not
            this.#handed--;
            this.#inflight--;
          } else {
            if (generation !== this.#generation) return;
            this.#handed--;
            this.#unwritten--;
          }
          if (err === undefined || err === null) this.stats.sent++;
          else if (this.#closed) this.#lostAtClose++;
          else {
            this.stats.failed++;
            this.onFailed(this.link.clientId, err);
          }
          this.pump();
        });
      }
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
    } finally {
      this.#pumping = false;
    }
  }

  /**
   * Close the client (messages in flight get a moment to be acknowledged); returns how many accepted
   * messages were never sent or never acknowledged.
   */
  async close(): Promise<number> {
    this.#closed = true;
    const waiting = this.#queue.length - this.#head;
    this.#queue = [];
    this.#head = 0;
    await this.link.close();
    // QoS 1/2 that mqtt.js still held when the socket closed are not called back
    return waiting + this.#lostAtClose + this.#unwritten + this.#inflight;
  }
}
