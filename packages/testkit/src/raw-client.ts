/**
 * An awaitable raw-packet client: write packets (or any bytes) and await what the broker sends back,
 * decoded, or the connection's end. For tests where the bytes matter.
 */
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Decoder, encode, type ConnectPacket, type Packet, type Properties, type ProtocolVersion, type QoS, type SubscriptionRequest } from '@rmqtt-ts/kernel';

export interface RawConnectOptions extends Partial<Omit<ConnectPacket, 'type'>> {}

type Match<P, T> = P extends { type: infer U } ? (T extends U ? P : never) : never;
/** The packet shape of a packet type (PUBACK … PUBCOMP share one shape). */
export type PacketOf<T extends Packet['type']> = Match<Packet, T>;

export class RawClient {
  readonly socket: Socket;
  readonly decoder = new Decoder({ maxPacketSize: 0 });
  version: ProtocolVersion;
  readonly #queue: Packet[] = [];
  #waiter: ((p: Packet | null) => void) | undefined;
  #closed = false;
  #decodeError: Error | undefined;
  readonly closed: Promise<void>;

  private constructor(socket: Socket, version: ProtocolVersion) {
    this.socket = socket;
    this.version = version;
    this.decoder.protocolVersion = version;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      try {
        for (let p = this.decoder.next(); p !== null; p = this.decoder.next()) this.#deliver(p);
      } catch (err) {
        this.#decodeError = err as Error;
        socket.destroy();
      }
    });
    socket.on('close', () => {
      this.#closed = true;
      const w = this.#waiter;
      this.#waiter = undefined;
      w?.(null);
    });
    socket.on('error', () => undefined);
  }

  /**
   * The far end of a connection a test server accepted: the test plays the broker (reads CONNECT,
   * writes CONNACK, …) against a real client.
   */
  static accept(socket: Socket, version: ProtocolVersion = 4): RawClient {
    return new RawClient(socket, version);
  }

  /** Open a TCP connection (nothing sent yet). */
  static open(port: number, options: { version?: ProtocolVersion; host?: string; localAddress?: string } = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ port, host: options.host ?? '127.0.0.1', localAddress: options.localAddress });
      socket.once('connect', () => resolve(new RawClient(socket, options.version ?? 4)));
      socket.once('error', reject);
    });
  }

  /** Open and CONNECT; resolves with the CONNACK. */
  static async connect(port: number, connect: RawConnectOptions = {}): Promise<{ client: RawClient; connack: PacketOf<2> }> {
    const version = connect.protocolVersion ?? 4;
    const client = await RawClient.open(port, { version });
    client.send(RawClient.connectPacket(connect));
    const connack = await client.expect(2);
    return { client, connack };
  }

  static connectPacket(o: RawConnectOptions = {}): ConnectPacket {
    const version = o.protocolVersion ?? 4;
    return {
      type: 1,
      protocolName: o.protocolName ?? (version === 3 ? 'MQIsdp' : 'MQTT'),
      protocolVersion: version,
      cleanStart: o.cleanStart ?? true,
      keepalive: o.keepalive ?? 60,
      clientId: o.clientId ?? `raw-${Math.random().toString(16).slice(2, 10)}`,
      will: o.will ?? null,
      username: o.username,
      password: o.password,
      properties: o.properties ?? {},
    };
  }

  #nextPacketId = 0;

  /** A packet id for this client's next SUBSCRIBE, UNSUBSCRIBE or QoS > 0 PUBLISH. */
  packetId(): number {
    this.#nextPacketId = (this.#nextPacketId % 0xffff) + 1;
    return this.#nextPacketId;
  }

  /**
   * SUBSCRIBE and await the SUBACK. A filter alone subscribes at QoS 0; options default to the
   * MQTT 3.1.1 behaviour (No Local off, Retain As Published off, Retain Handling 0).
   */
  async subscribe(subs: string | (Partial<SubscriptionRequest> & { filter: string }) | (Partial<SubscriptionRequest> & { filter: string })[], properties: Properties = {}): Promise<PacketOf<9>> {
    const list = (Array.isArray(subs) ? subs : [typeof subs === 'string' ? { filter: subs } : subs]).map((x) => ({
      qos: 0 as QoS,
      noLocal: false,
      retainAsPublished: false,
      retainHandling: 0 as const,
      ...x,
    }));
    const packetId = this.packetId();
    this.send({ type: 8, packetId, subscriptions: list, properties });
    const ack = await this.expect(9);
    if (ack.packetId !== packetId) throw new Error(`SUBACK for packet id ${ack.packetId}, expected ${packetId}`);
    return ack;
  }

  /** UNSUBSCRIBE and await the UNSUBACK. */
  async unsubscribe(filters: string | string[], properties: Properties = {}): Promise<PacketOf<11>> {
    const packetId = this.packetId();
    this.send({ type: 10, packetId, filters: Array.isArray(filters) ? filters : [filters], properties });
    const ack = await this.expect(11);
    if (ack.packetId !== packetId) throw new Error(`UNSUBACK for packet id ${ack.packetId}, expected ${packetId}`);
    return ack;
  }

  /**
   * PUBLISH and, for QoS 1 and 2, complete the exchange (PUBACK, or PUBREC → PUBREL → PUBCOMP);
   * resolves with the PUBACK or PUBREC. Another packet arriving first fails it: use send() when the
   * broker may interleave deliveries.
   */
  async publish(
    topic: string,
    payload: string | Buffer,
    options: { qos?: QoS; retain?: boolean; dup?: boolean; properties?: Properties; packetId?: number } = {},
  ): Promise<PacketOf<4> | PacketOf<5> | undefined> {
    const qos = options.qos ?? 0;
    const packetId = qos === 0 ? undefined : (options.packetId ?? this.packetId());
    this.send({ type: 3, topic, payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload), qos, retain: options.retain ?? false, dup: options.dup ?? false, packetId, properties: options.properties ?? {} });
    if (qos === 0) return undefined;
    const ack = await this.expect(qos === 1 ? 4 : 5);
    if (ack.packetId !== packetId) throw new Error(`ack for packet id ${ack.packetId}, expected ${packetId}`);
    if (qos === 2 && ack.reasonCode < 0x80) {
      this.send({ type: 6, packetId: packetId!, reasonCode: 0, properties: {} });
      await this.expect(7);
    }
    return ack;
  }

  #deliver(p: Packet): void {
    const w = this.#waiter;
    if (w !== undefined) {
      this.#waiter = undefined;
      w(p);
    } else {
      this.#queue.push(p);
    }
  }

  /** Write a packet (encoded for this client's version) or raw bytes. */
  send(packet: Packet | Buffer | number[]): void {
    const bytes = Buffer.isBuffer(packet) ? packet : Array.isArray(packet) ? Buffer.from(packet) : encode(packet, this.version);
    this.socket.write(bytes);
  }

  /** The next packet from the broker, or null if the connection closes first. */
  next(timeoutMs = 2000): Promise<Packet | null> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(new Error(`no packet within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiter = (p) => {
        clearTimeout(timer);
        resolve(p);
      };
    });
  }

  /** The next packet, which must be of the given type. */
  async expect<T extends Packet['type']>(type: T, timeoutMs = 2000): Promise<PacketOf<T>> {
    const p = await this.next(timeoutMs);
    if (p === null) throw new Error(`connection closed while waiting for packet type ${type}${this.#decodeError ? `: ${this.#decodeError.message}` : ''}`);
    if (p.type !== type) throw new Error(`expected packet type ${type}, got ${p.type}: ${JSON.stringify(p, bufferReplacer)}`);
    return p as PacketOf<T>;
  }

  /** Resolves true if nothing arrives within the time (and the connection stays open). */
  async expectSilence(ms = 300): Promise<boolean> {
    try {
      const p = await this.next(ms);
      if (p === null) throw new Error('connection closed');
      throw new Error(`expected no packet, got type ${p.type}: ${JSON.stringify(p, bufferReplacer)}`);
    } catch (err) {
      if ((err as Error).message.startsWith('no packet within')) return true;
      throw err;
    }
  }

  /** Wait until the broker closes the connection; resolves with the packets it sent before. */
  async expectClose(timeoutMs = 3000): Promise<Packet[]> {
    const got: Packet[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`connection still open after ${timeoutMs} ms; got ${JSON.stringify(got, bufferReplacer)}`);
      const p = await this.next(left).catch(() => undefined);
      if (p === null) return got;
      if (p !== undefined) got.push(p);
    }
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** Close abruptly (no DISCONNECT). */
  destroy(): void {
    this.socket.destroy();
  }

  /** DISCONNECT then close. */
  async disconnect(reasonCode = 0): Promise<void> {
    if (!this.#closed) {
      this.send({ type: 14, reasonCode, properties: {} });
      this.socket.end();
    }
    await this.closed;
  }
}

/** Clients of a test, destroyed together (call destroyAll from afterEach). */
export class RawClientPool {
  readonly #clients: RawClient[] = [];

  /** Connect a client and require CONNACK success. */
  async connect(port: number, options: RawConnectOptions = {}): Promise<RawClient> {
    const { client, connack } = await RawClient.connect(port, options);
    this.#clients.push(client);
    if (connack.reasonCode !== 0) throw new Error(`CONNACK ${connack.reasonCode} for ${options.clientId ?? 'client'}`);
    return client;
  }

  /** Keep a client opened elsewhere, to destroy it with the others. */
  track(client: RawClient): RawClient {
    this.#clients.push(client);
    return client;
  }

  destroyAll(): void {
    for (const c of this.#clients.splice(0)) c.destroy();
  }
}

function bufferReplacer(_k: string, v: unknown): unknown {
  if (v !== null && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') return `<Buffer ${Buffer.from((v as { data: number[] }).data).toString('hex')}>`;
  return v;
}

/**
 * A TCP server on a free loopback port whose connections the test plays the broker side of: each
 * accepted connection is handed out, in order, as a RawClient (see RawClient.accept).
 */
export class RawServer {
  readonly #server: Server;
  readonly #accepted: RawClient[] = [];
  readonly #sockets = new Set<Socket>();
  #wake: (() => void) | undefined;

  private constructor(server: Server, version: ProtocolVersion) {
    this.#server = server;
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      this.#accepted.push(RawClient.accept(socket, version));
      const w = this.#wake;
      this.#wake = undefined;
      w?.();
    });
  }

  static async start(version: ProtocolVersion = 4): Promise<RawServer> {
    const server = createServer();
    const s = new RawServer(server, version);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return s;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** The next connection accepted (waits for it, up to `timeoutMs`). */
  async next(timeoutMs = 5000): Promise<RawClient> {
    const deadline = Date.now() + timeoutMs;
    while (this.#accepted.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no connection within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return this.#accepted.shift()!;
  }

  /** Stop listening and close every connection it accepted. */
  close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
