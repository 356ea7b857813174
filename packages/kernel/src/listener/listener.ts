/**
 * One configured listener (`listener.tcp.external`, `listener.ws.internal`, ...): its server, and the
 * admission of new sockets — max_connections (capped by the open-file limit), max_conn_rate and
 * max_handshaking_limit (excess sockets wait paused, within handshake_timeout).
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { RmqttError } from '@rmqtt-ts/plugin-api';
import type { ListenerConfig } from '../config/index.js';
import { Connection } from '../connection/connection.js';
import type { Kernel } from '../kernel.js';
import { C } from '../metrics/metrics.js';
import { TokenBucket } from '../delivery/rate.js';
import { readProxyHeader } from './proxy-protocol.js';
import { SocketTransport, WsTransport, type Transport } from './transport.js';

const WS_PROTOCOLS = new Set(['mqtt', 'mqttv3.1']);

/** RLIMIT_NOFILE of this process (Linux), or undefined where it cannot be read. */
export function openFileLimit(): number | undefined {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
    if (m && m[1] !== 'unlimited') return Number(m[1]);
  } catch {
    // not Linux: no cap from here
  }
  return undefined;
}

interface Waiting {
  socket: Socket;
  since: number;
  /** Called with the accept time: handshake_timeout counts from there, waiting included. */
  admit: (since: number) => void;
}

export class MqttListener {
  readonly config: ListenerConfig;
  readonly #k: Kernel;
  #server: NetServer | HttpServer | undefined;
  #wss: WebSocketServer | undefined;
  #maxConnections: number;
  #rate: TokenBucket | null;
  readonly #waiting: Waiting[] = [];
  #waitTimer: NodeJS.Timeout | undefined;
  #lastAcceptError = 0;

  constructor(kernel: Kernel, config: ListenerConfig, fdLimit: number | undefined) {
    this.#k = kernel;
    this.config = config;
    // leave descriptors for files, plugins and outgoing connections
    this.#maxConnections = fdLimit !== undefined ? Math.max(1, Math.min(config.maxConnections, fdLimit - 256)) : config.maxConnections;
    this.#rate = config.maxConnRate > 0 ? new TokenBucket(config.maxConnRate, 1000) : null;
  }

  get maxConnections(): number {
    return this.#maxConnections;
  }

  /** The bound address (port resolved when configured as 0). */
  address(): { host: string; port: number } {
    const a = this.#server?.address();
    if (a && typeof a === 'object') return { host: a.address, port: a.port };
    return { host: this.config.addr.host, port: this.config.addr.port };
  }

  async start(): Promise<void> {
    const cfg = this.config;
    const server = this.#createServer();
    this.#server = server;
    server.on('error', (err: NodeJS.ErrnoException) => this.#serverError(err));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(new RmqttError('ERR_CONFIG', `listener ${cfg.name}: cannot listen on ${cfg.addr.host}:${cfg.addr.port}: ${err.message}`, { cause: err }));
      server.once('error', onError);
      server.listen({ host: cfg.addr.host, port: cfg.addr.port, backlog: cfg.backlog }, () => {
        server.off('error', onError);
        resolve();
      });
    });
  }

  #tlsOptions(): TlsOptions {
    const cfg = this.config;
    if (cfg.cert === undefined || cfg.key === undefined) {
      throw new RmqttError('ERR_CONFIG', `listener ${cfg.name}: ${cfg.type} needs cert and key`);
    }
    const read = (key: string, path: string): Buffer => {
      try {
        return readFileSync(path);
      } catch (err) {
        throw new RmqttError('ERR_CONFIG', `listener ${cfg.name}: ${key} = "${path}": ${(err as Error).message}`, { cause: err });
      }
    };
    const opts: TlsOptions = { cert: read('cert', cfg.cert), key: read('key', cfg.key) };
    if (cfg.crossCertificate) {
      // mutual TLS: the client must present a certificate signed by client_ca_certs
      if (cfg.clientCaCerts !== undefined) opts.ca = read('client_ca_certs', cfg.clientCaCerts);
      opts.requestCert = true;
      opts.rejectUnauthorized = true;
    }
    return opts;
  }

  #createServer(): NetServer | HttpServer {
    const cfg = this.config;
    switch (cfg.type) {
      case 'tcp':
        return createNetServer({ pauseOnConnect: true }, (s) => this.#admit(s, (since) => this.#startSocket(s, 'tcp', since)));
      case 'tls': {
        const server = createTlsServer(this.#tlsOptions(), (s) => this.#startSocket(s, 'tls'));
        // admission before the TLS handshake: count raw sockets
        server.on('connection', (s: Socket) => this.#gate(s));
        server.on('tlsClientError', () => this.#k.metrics.counters[C['client.connection.refused']]!++);
        return server;
      }
      case 'ws':
      case 'wss': {
        const server = cfg.type === 'ws' ? createHttpServer() : createHttpsServer(this.#tlsOptions());
        server.on('connection', (s: Socket) => this.#gate(s));
        const wss = new WebSocketServer({
          noServer: true,
          maxPayload: cfg.maxPacketSize + 8,
          perMessageDeflate: false,
          // [MQTT-6.0.0-4] the subprotocol is "mqtt" (or "mqttv3.1" for old clients)
          handleProtocols: (protocols) => {
            for (const p of protocols) if (WS_PROTOCOLS.has(p)) return p;
            return false;
          },
        });
        this.#wss = wss;
        server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
          const offered = String(req.headers['sec-websocket-protocol'] ?? '')
            .split(',')
            .map((p) => p.trim());
          if (wsPath(cfg) !== undefined && req.url?.split('?')[0] !== wsPath(cfg)) {
            socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
            return;
          }
          if (!offered.some((p) => WS_PROTOCOLS.has(p))) {
            socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
            return;
          }
          wss.handleUpgrade(req, socket, head, (ws: WebSocket) => this.#startWs(ws, socket as Socket, cfg.type as 'ws' | 'wss'));
        });
        return server;
      }
    }
  }

  /** For TLS and WebSocket servers: count the raw socket against the limits, pausing it if it must wait. */
  #gate(socket: Socket): void {
    if (!this.#underConnectionLimit(socket)) return;
    if (this.#mustWait()) {
      socket.pause();
      this.#enqueue(socket, () => socket.resume());
    }
  }

  #underConnectionLimit(socket: Socket): boolean {
    if (this.#k.closing || this.#k.connections.counts(this.config.name).open + this.#waiting.length >= this.#maxConnections) {
      this.#k.metrics.counters[C['client.connection.refused']]!++;
      socket.destroy();
      return false;
    }
    return true;
  }

  #mustWait(): boolean {
    const c = this.#k.connections.counts(this.config.name);
    const limit = this.config.maxHandshakingLimit;
    if (this.#waiting.length > 0) return true;
    if (limit > 0 && c.handshaking >= limit) return true;
    return this.#rate !== null && !this.#rate.tryTake(1);
  }

  #admit(socket: Socket, start: (since: number) => void): void {
    if (!this.#underConnectionLimit(socket)) return;
    if (this.#mustWait()) {
      this.#enqueue(socket, start);
      return;
    }
    start(Date.now());
  }

  #enqueue(socket: Socket, admit: (since: number) => void): void {
    socket.on('error', noop);
    this.#waiting.push({ socket, since: Date.now(), admit });
    this.#scheduleWaiting(this.#rate?.waitFor(1) ?? 100);
  }

  #scheduleWaiting(ms: number): void {
    if (this.#waitTimer !== undefined) return;
    this.#waitTimer = setTimeout(() => {
      this.#waitTimer = undefined;
      this.admitWaiting();
    }, Math.max(1, Math.min(ms, 1000)));
    this.#waitTimer.unref();
  }

  /** Let waiting sockets in while the limits allow; drop those that waited past handshake_timeout. */
  admitWaiting(): void {
    const now = Date.now();
    const c = this.#k.connections.counts(this.config.name);
    const limit = this.config.maxHandshakingLimit;
    while (this.#waiting.length > 0) {
      const w = this.#waiting[0]!;
      if (w.socket.destroyed || now - w.since > this.config.handshakeTimeoutMs) {
        this.#waiting.shift();
        if (!w.socket.destroyed) {
          this.#k.metrics.counters[C['client.handshaking.timeout']]!++;
          w.socket.destroy();
        }
        continue;
      }
      if (limit > 0 && c.handshaking >= limit) break;
      if (this.#rate !== null && !this.#rate.tryTake(1)) {
        this.#scheduleWaiting(this.#rate.waitFor(1));
        return;
      }
      this.#waiting.shift();
      w.admit(w.since);
    }
    if (this.#waiting.length > 0) this.#scheduleWaiting(100);
  }

  #startSocket(socket: Socket, kind: 'tcp' | 'tls', since = Date.now()): void {
    const cfg = this.config;
    socket.setNoDelay(cfg.nodelay);
    if (cfg.tcpKeepalive) socket.setKeepAlive(true);
    if (cfg.proxyProtocol) {
      socket.on('error', noop);
      readProxyHeader(socket, cfg.proxyProtocolTimeoutMs).then(
        (r) => {
          this.#open(new SocketTransport(socket, kind, r.remote), r.rest, since);
          socket.resume();
        },
        () => socket.destroy(),
      );
      return;
    }
    this.#open(new SocketTransport(socket, kind), undefined, since);
    socket.resume();
  }

  #startWs(ws: WebSocket, socket: Socket, kind: 'ws' | 'wss'): void {
    socket.setNoDelay(this.config.nodelay);
    this.#open(new WsTransport(ws, socket, kind), undefined, Date.now());
  }

  #open(transport: Transport, initial: Buffer | undefined, acceptedAt: number): void {
    const conn = new Connection(this.#k, this.config, transport, acceptedAt);
    conn.start();
    if (initial !== undefined && initial.length > 0) conn.feed(initial);
  }

  #serverError(err: NodeJS.ErrnoException): void {
    // EMFILE / ENFILE while accepting: log (at most once a second), never end the process
    const now = Date.now();
    if (now - this.#lastAcceptError > 1000) {
      this.#lastAcceptError = now;
      this.#k.logger.error({ err, listener: this.config.name }, 'listener error');
    }
  }

  async stop(): Promise<void> {
    if (this.#waitTimer) clearTimeout(this.#waitTimer);
    for (const w of this.#waiting.splice(0)) w.socket.destroy();
    this.#wss?.close();
    const server = this.#server;
    if (server === undefined) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function wsPath(cfg: ListenerConfig): string | undefined {
  return cfg.wsPath;
}

function noop(): void {}
