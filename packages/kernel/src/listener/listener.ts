/**
 * One configured listener (`listener.tcp.external`, `listener.ws.internal`, ...). Every type accepts
 * raw TCP sockets through one front door, where the limits apply before anything else happens:
 * max_connections (capped by the open-file limit), max_conn_rate and max_handshaking_limit (excess
 * sockets wait paused), handshake_timeout from accept to CONNACK (TLS handshake, PROXY header and
 * WebSocket upgrade included). Then the PROXY header, if configured, and the type's own layer: TLS and
 * HTTP servers that never listen themselves are handed the socket.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket, type TlsOptions } from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import { RmqttError, type SocketAddress } from '@rmqtt-ts/plugin-api';
import type { ListenerConfig } from '../config/index.js';
import { Connection } from '../connection/connection.js';
import { TokenBucket } from '../delivery/rate.js';
import type { Kernel } from '../kernel.js';
import { C } from '../metrics/metrics.js';
import { readProxyHeader } from './proxy-protocol.js';
import { SocketTransport, WsTransport } from './transport.js';

const WS_PROTOCOLS = new Set(['mqtt', 'mqttv3.1']);

/**
 * TCP keepalive probes start after the system's idle time. Passed explicitly: without it Node asks for an
 * idle time of 0, which the kernel refuses (one failed system call per connection).
 */
const KEEPALIVE_IDLE_MS = ((): number => {
  try {
    const s = Number(readFileSync('/proc/sys/net/ipv4/tcp_keepalive_time', 'utf8').trim());
    if (Number.isInteger(s) && s > 0) return s * 1000;
  } catch {
    // not Linux
  }
  return 7_200_000;
})();

/**
 * On Linux an accepted socket is a copy of the listening socket's options, SO_KEEPALIVE and the probe
 * timings included, so setting them once on the listener spares four system calls per connection. Node
 * offers no public call for a server socket; its handle's own setKeepAlive is used when present, and
 * anything else (another OS, a handle without it, an error) falls back to setting each accepted socket.
 */
function setListenerKeepalive(server: NetServer): boolean {
  if (process.platform !== 'linux') return false;
  const handle = (server as unknown as { _handle?: { setKeepAlive?: (on: boolean, delaySecs: number) => number } })._handle;
  if (typeof handle?.setKeepAlive !== 'function') return false;
  try {
    return handle.setKeepAlive(true, Math.floor(KEEPALIVE_IDLE_MS / 1000)) === 0;
  } catch {
    return false;
  }
}

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

/** A socket between accept and its Connection (TLS handshake, PROXY header, WebSocket upgrade). */
class Pending {
  remote: SocketAddress | undefined;
  timer: NodeJS.Timeout | undefined;
  done = false;
  constructor(
    readonly socket: Socket,
    readonly since: number,
  ) {}
}

/** How long a socket accepted at max_connections waits for a slot, and how many may wait. */
const OVER_LIMIT_GRACE_MS = 100;
const OVER_LIMIT_WAITERS = 64;

interface GraceWaiter {
  socket: Socket;
  timer: NodeJS.Timeout | undefined;
  leave: () => void;
}

interface Waiting {
  socket: Socket;
  since: number;
}

export class MqttListener {
  readonly config: ListenerConfig;
  readonly #k: Kernel;
  #server: NetServer | undefined;
  /** The type's own layer, fed sockets by the front door: TLS, HTTP (WS) or HTTPS (WSS). */
  #inner: TlsServer | HttpServer | undefined;
  #wss: WebSocketServer | undefined;
  readonly #maxConnections: number;
  readonly #rate: TokenBucket | null;
  readonly #waiting: Waiting[] = [];
  #waitTimer: NodeJS.Timeout | undefined;
  #lastAcceptError = 0;
  /** Raw sockets open on this listener (what max_connections counts). */
  #sockets = 0;
  /** Admitted sockets without a Connection yet (they count as handshaking). */
  #preHandshake = 0;
  /** Sockets accepted at max_connections, waiting a moment for a slot. */
  readonly #graceWaiters: GraceWaiter[] = [];
  /** Accepted sockets inherit TCP keepalive from the listening socket (Linux): no system calls per accept. */
  #keepaliveInherited = false;
  readonly #pending = new WeakMap<Duplex, Pending>();
  /** The same records, to close them at shutdown. */
  readonly #unsettled = new Set<Pending>();

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
    this.#inner = this.#createInner();
    // sockets start reading at once; only one that must wait for admission is paused
    const server = createNetServer({ pauseOnConnect: false }, (s) => this.#accept(s));
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
    if (cfg.tcpKeepalive) this.#keepaliveInherited = setListenerKeepalive(server);
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
    const opts: TlsOptions = { cert: read('cert', cfg.cert), key: read('key', cfg.key), handshakeTimeout: cfg.handshakeTimeoutMs };
    if (cfg.crossCertificate) {
      // mutual TLS: the client must present a certificate signed by client_ca_certs
      if (cfg.clientCaCerts !== undefined) opts.ca = read('client_ca_certs', cfg.clientCaCerts);
      opts.requestCert = true;
      opts.rejectUnauthorized = true;
    }
    return opts;
  }

  #createInner(): TlsServer | HttpServer | undefined {
    const cfg = this.config;
    if (cfg.type === 'tcp') return undefined;
    if (cfg.type === 'tls') {
      const server = createTlsServer(this.#tlsOptions(), (s: TLSSocket) => this.#open(s, 'tls'));
      server.on('tlsClientError', (_err: Error, s: TLSSocket) => {
        this.#k.metrics.counters[C['client.connection.refused']]!++;
        s.destroy();
      });
      return server;
    }
    const http = cfg.type === 'ws' ? createHttpServer() : createHttpsServer(this.#tlsOptions());
    // a socket that never completes its upgrade is closed by the handshake timer, not Node's defaults
    http.headersTimeout = cfg.handshakeTimeoutMs;
    http.requestTimeout = cfg.handshakeTimeoutMs;
    http.on('tlsClientError', (_err: Error, s: TLSSocket) => {
      this.#k.metrics.counters[C['client.connection.refused']]!++;
      s.destroy();
    });
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
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const offered = String(req.headers['sec-websocket-protocol'] ?? '')
        .split(',')
        .map((p) => p.trim());
      if (cfg.wsPath !== undefined && req.url?.split('?')[0] !== cfg.wsPath) {
        socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
        return;
      }
      if (!offered.some((p) => WS_PROTOCOLS.has(p))) {
        socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws: WebSocket) => this.#open(socket as Socket, cfg.type as 'ws' | 'wss', ws));
    });
    // plain HTTP requests get nothing: this port speaks MQTT over WebSocket only
    http.on('request', (_req, res) => {
      res.writeHead(426, { Connection: 'close' }).end();
    });
    return http;
  }

  // ---- the front door ----

  #accept(socket: Socket): void {
    if (this.#k.closing) {
      this.#refuse(socket);
      return;
    }
    if (this.#sockets >= this.#maxConnections) {
      this.#overLimit(socket);
      return;
    }
    this.#take(socket);
  }

  #refuse(socket: Socket): void {
    this.#k.metrics.counters[C['client.connection.refused']]!++;
    socket.destroy();
  }

  /**
   * At max_connections a new socket gets a short grace: sockets whose clients have already left may not
   * have been seen closing yet (after a storm, thousands of them). It takes the first slot freed within
   * OVER_LIMIT_GRACE_MS, or is closed unanswered; at most OVER_LIMIT_WAITERS wait at once.
   */
  #overLimit(socket: Socket): void {
    if (this.#graceWaiters.length >= OVER_LIMIT_WAITERS) {
      this.#refuse(socket);
      return;
    }
    socket.pause();
    const leave = (): void => {
      const i = this.#graceWaiters.indexOf(w);
      if (i >= 0) this.#graceWaiters.splice(i, 1);
      clearTimeout(w.timer);
    };
    const w: GraceWaiter = { socket, timer: undefined, leave };
    // until it is taken or refused: errors are followed by 'close', which ends the wait
    socket.on('error', noop);
    w.timer = setTimeout(() => {
      leave();
      this.#refuse(socket);
    }, OVER_LIMIT_GRACE_MS);
    w.timer.unref();
    socket.once('close', leave);
    this.#graceWaiters.push(w);
  }

  /** A counted socket: limits, options, then admission. */
  #take(socket: Socket): void {
    this.#sockets++;
    socket.on('close', this.#socketClosed);
    // errors (ECONNRESET, ...) are followed by 'close', which is what the rest of the broker handles
    socket.on('error', noop);
    socket.setNoDelay(this.config.nodelay);
    if (this.config.tcpKeepalive && !this.#keepaliveInherited) socket.setKeepAlive(true, KEEPALIVE_IDLE_MS);
    const since = Date.now();
    if (this.#mustWait()) {
      socket.pause();
      this.#waiting.push({ socket, since });
      this.#scheduleWaiting(this.#rate?.waitFor(1) ?? 100);
      return;
    }
    this.#admit(socket, since);
  }

  readonly #socketClosed = (): void => {
    this.#sockets--;
    // a slot is free: the oldest socket waiting at the limit takes it
    const w = this.#graceWaiters.shift();
    if (w !== undefined) {
      clearTimeout(w.timer);
      w.socket.removeListener('close', w.leave);
      w.socket.removeListener('error', noop);
      if (!w.socket.destroyed && !this.#k.closing) this.#take(w.socket);
    }
  };

  #mustWait(): boolean {
    if (this.#waiting.length > 0) return true;
    const limit = this.config.maxHandshakingLimit;
    if (limit > 0 && this.#handshaking() >= limit) return true;
    if (this.#rate === null || this.#rate.tryTake(1)) return false;
    this.#k.metrics.counters[C['client.connection.rate_limited']]!++;
    return true;
  }

  #handshaking(): number {
    return this.#k.connections.counts(this.config.name).handshaking + this.#preHandshake;
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
      if (limit > 0 && this.#handshaking() >= limit) break;
      if (this.#rate !== null && !this.#rate.tryTake(1)) {
        this.#scheduleWaiting(this.#rate.waitFor(1));
        return;
      }
      this.#waiting.shift();
      this.#admit(w.socket, w.since);
    }
    if (this.#waiting.length > 0) this.#scheduleWaiting(100);
  }

  /** Admitted: the PROXY header (if any), then the type's layer; the handshake clock keeps running. */
  #admit(socket: Socket, since: number): void {
    if (this.#inner === undefined && !this.config.proxyProtocol) {
      // plain TCP: the Connection starts now and its handshake timeout runs from `since`
      this.#open(socket, 'tcp', undefined, since);
      if (socket.isPaused()) socket.resume();
      return;
    }
    const p = new Pending(socket, since);
    this.#pending.set(socket, p);
    this.#unsettled.add(p);
    this.#preHandshake++;
    const left = this.config.handshakeTimeoutMs - (Date.now() - since);
    p.timer = setTimeout(() => {
      this.#k.metrics.counters[C['client.handshaking.timeout']]!++;
      this.#settle(p);
      socket.destroy();
    }, Math.max(1, left));
    p.timer.unref();
    socket.once('close', () => this.#settle(p));
    if (!this.config.proxyProtocol) {
      this.#handOver(socket);
      return;
    }
    readProxyHeader(socket, this.config.proxyProtocolTimeoutMs).then(
      (h) => {
        if (socket.destroyed) return;
        p.remote = h.remote;
        if (h.rest.length > 0) socket.unshift(h.rest);
        this.#handOver(socket);
      },
      () => {
        this.#k.metrics.counters[C['client.connection.refused']]!++;
        socket.destroy();
      },
    );
  }

  #handOver(socket: Socket): void {
    const inner = this.#inner;
    if (inner === undefined) {
      this.#open(socket, 'tcp');
      if (socket.isPaused()) socket.resume();
      return;
    }
    // the TLS / HTTP layer reads from here on; the pending record follows the socket it will see
    if (socket.isPaused()) socket.resume();
    inner.emit('connection', socket);
  }

  #settle(p: Pending): void {
    if (p.done) return;
    p.done = true;
    this.#unsettled.delete(p);
    this.#pending.delete(p.socket);
    if (p.timer !== undefined) clearTimeout(p.timer);
    p.timer = undefined;
    this.#preHandshake--;
    if (this.#waiting.length > 0) this.admitWaiting();
  }

  /** The MQTT layer begins: a Connection, which takes over the handshake bookkeeping. */
  #open(socket: Socket, kind: 'tcp' | 'tls' | 'ws' | 'wss', ws?: WebSocket, acceptedAt?: number): void {
    const p = acceptedAt === undefined ? this.#findPending(socket) : undefined;
    const since = acceptedAt ?? p?.since ?? Date.now();
    if (p !== undefined) this.#settle(p);
    const remote = p?.remote;
    const transport = ws !== undefined ? new WsTransport(ws, socket, kind as 'ws' | 'wss', remote) : new SocketTransport(socket, kind as 'tcp' | 'tls', remote);
    new Connection(this.#k, this.config, transport, since).start();
  }

  #findPending(socket: Socket): Pending | undefined {
    const direct = this.#pending.get(socket);
    if (direct !== undefined) return direct;
    // a TLS socket: its record is under the raw socket it wraps
    const parent = (socket as unknown as { _parent?: Socket })._parent;
    return parent !== undefined ? this.#pending.get(parent) : undefined;
  }

  #serverError(err: NodeJS.ErrnoException): void {
    // EMFILE / ENFILE while accepting: log (at most once a second), never end the process
    const now = Date.now();
    if (now - this.#lastAcceptError > 1000) {
      this.#lastAcceptError = now;
      this.#k.logger.error({ err, listener: this.config.name }, 'listener error');
    }
  }

  /** Stop accepting; resolves once every socket of this listener is closed. */
  async stop(): Promise<void> {
    if (this.#waitTimer) clearTimeout(this.#waitTimer);
    for (const w of this.#waiting.splice(0)) w.socket.destroy();
    for (const w of this.#graceWaiters.splice(0)) {
      clearTimeout(w.timer);
      w.socket.destroy();
    }
    for (const p of [...this.#unsettled]) p.socket.destroy();
    this.#wss?.close();
    const server = this.#server;
    if (server === undefined) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function noop(): void {}
