/**
 * A connection's byte stream, whatever carries it (TCP, TLS, WebSocket). Writes made in one tick go out
 * together on the next (cork/uncork, or one WebSocket frame), so a burst of deliveries costs one
 * syscall per connection, not one per packet.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { SocketAddress } from '@rmqtt-ts/plugin-api';
import type { WebSocket } from 'ws';

export interface TransportEvents {
  onData(chunk: Buffer): void;
  onClose(): void;
  onDrain(): void;
}

export interface Transport {
  readonly kind: 'tcp' | 'tls' | 'ws' | 'wss';
  readonly remote: SocketAddress;
  readonly local: SocketAddress;
  /** Common name of a verified client certificate (mutual TLS). */
  readonly certCommonName: string | undefined;
  /** Bytes accepted by write() and not yet handed to the OS. */
  readonly writableLength: number;
  bind(events: TransportEvents): void;
  write(buf: Buffer): void;
  pause(): void;
  resume(): void;
  /** Flush what was written, then close. */
  end(): void;
  /** Close at once. */
  destroy(): void;
}

/** `::ffff:1.2.3.4` → `1.2.3.4`, so ACL rules and placeholders see one form. */
export function normalizeIp(ip: string | undefined): string {
  if (ip === undefined) return '';
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

function certCn(socket: Socket): string | undefined {
  const tls = socket as TLSSocket;
  if (typeof tls.getPeerCertificate !== 'function' || !tls.authorized) return undefined;
  const cert = tls.getPeerCertificate();
  const cn = cert?.subject?.CN;
  return Array.isArray(cn) ? cn[0] : cn || undefined;
}

export class SocketTransport implements Transport {
  readonly kind: 'tcp' | 'tls';
  readonly remote: SocketAddress;
  #local: SocketAddress | undefined;
  readonly certCommonName: string | undefined;
  readonly #socket: Socket;
  /** What was written this tick: nothing, one buffer (the common case), or several. */
  #pending: Buffer | Buffer[] | null = null;
  #pendingBytes = 0;
  #ending = false;

  constructor(socket: Socket, kind: 'tcp' | 'tls', remote?: SocketAddress) {
    this.#socket = socket;
    this.kind = kind;
    this.remote = remote ?? { ip: normalizeIp(socket.remoteAddress), port: socket.remotePort ?? 0 };
    this.certCommonName = kind === 'tls' ? certCn(socket) : undefined;
  }

  /** Read when first asked for (a system call most connections never need). */
  get local(): SocketAddress {
    const s = this.#socket;
    return (this.#local ??= { ip: normalizeIp(s.localAddress), port: s.localPort ?? 0 });
  }

  get writableLength(): number {
    return this.#socket.writableLength + this.#pendingBytes;
  }

  bind(events: TransportEvents): void {
    const s = this.#socket as Socket & { [EVENTS]?: TransportEvents };
    // one set of module-level handlers for every socket (no closures per connection)
    s[EVENTS] = events;
    s.on('data', onSocketData);
    s.on('drain', onSocketDrain);
    s.on('close', onSocketClose);
    // errors (ECONNRESET, EPIPE, ...) are followed by 'close'; the connection handles that
    s.on('error', noop);
  }

  /**
   * Held until the end of the tick. One flush for every transport written to in the tick (a fan-out
   * to a thousand subscribers schedules one callback, not a thousand), and a lone buffer goes straight
   * to the socket without stream corking.
   */
  write(buf: Buffer): void {
    if (this.#ending || this.#socket.destroyed) return;
    const p = this.#pending;
    if (p === null) {
      this.#pending = buf;
      scheduleFlush(this);
    } else if (Array.isArray(p)) {
      p.push(buf);
    } else {
      this.#pending = [p, buf];
    }
    this.#pendingBytes += buf.length;
  }

  /** Hand what was written this tick to the socket. */
  flush(): void {
    const p = this.#pending;
    if (p === null) return;
    this.#pending = null;
    this.#pendingBytes = 0;
    const s = this.#socket;
    if (s.destroyed) return;
    if (!Array.isArray(p)) {
      s.write(p);
      return;
    }
    s.cork();
    for (let i = 0; i < p.length; i++) s.write(p[i]!);
    s.uncork();
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  end(): void {
    if (this.#ending) return;
    this.flush();
    this.#ending = true;
    const s = this.#socket;
    s.end();
    // a peer that never closes its side must not hold the socket forever
    setTimeout(() => s.destroy(), 2000).unref();
  }

  destroy(): void {
    this.#ending = true;
    this.#socket.destroy();
  }
}

export class WsTransport implements Transport {
  readonly kind: 'ws' | 'wss';
  readonly remote: SocketAddress;
  readonly local: SocketAddress;
  readonly certCommonName: string | undefined;
  readonly #ws: WebSocket;
  readonly #socket: Socket;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #scheduled = false;
  #ending = false;

  constructor(ws: WebSocket, socket: Socket, kind: 'ws' | 'wss', remote?: SocketAddress) {
    this.#ws = ws;
    this.#socket = socket;
    this.kind = kind;
    this.remote = remote ?? { ip: normalizeIp(socket.remoteAddress), port: socket.remotePort ?? 0 };
    this.local = { ip: normalizeIp(socket.localAddress), port: socket.localPort ?? 0 };
    this.certCommonName = kind === 'wss' ? certCn(socket) : undefined;
  }

  get writableLength(): number {
    return this.#ws.bufferedAmount + this.#pendingBytes + this.#socket.writableLength;
  }

  bind(events: TransportEvents): void {
    this.#ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      // MQTT over WebSocket is binary frames [MQTT-6.0.0-1]; a text frame ends the connection
      if (!isBinary) {
        this.destroy();
        return;
      }
      events.onData(Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data));
    });
    this.#ws.on('close', () => events.onClose());
    this.#ws.on('error', noop);
    this.#socket.on('drain', () => events.onDrain());
  }

  write(buf: Buffer): void {
    if (this.#ending) return;
    this.#pending.push(buf);
    this.#pendingBytes += buf.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      process.nextTick(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    const parts = this.#pending;
    if (parts.length === 0) return;
    this.#pending = [];
    this.#pendingBytes = 0;
    if (this.#ws.readyState !== 1) return;
    this.#ws.send(parts.length === 1 ? parts[0]! : Buffer.concat(parts), { binary: true });
  };

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  end(): void {
    if (this.#ending) return;
    this.#flush();
    this.#ending = true;
    this.#ws.close(1000);
    setTimeout(() => this.#ws.terminate(), 2000).unref();
  }

  destroy(): void {
    this.#ending = true;
    this.#ws.terminate();
  }
}

function noop(): void {}

const EVENTS = Symbol('rmqtt.transportEvents');
type EventSocket = Socket & { [EVENTS]: TransportEvents };

function onSocketData(this: EventSocket, chunk: Buffer): void {
  this[EVENTS].onData(chunk);
}
function onSocketDrain(this: EventSocket): void {
  this[EVENTS].onDrain();
}
function onSocketClose(this: EventSocket): void {
  this[EVENTS].onClose();
}
/** Transports written to in this tick, flushed together at its end. */
let dirty: SocketTransport[] = [];
let flushScheduled = false;

function scheduleFlush(t: SocketTransport): void {
  dirty.push(t);
  if (!flushScheduled) {
    flushScheduled = true;
    process.nextTick(flushAll);
  }
}

function flushAll(): void {
  flushScheduled = false;
  const list = dirty;
  dirty = [];
  for (let i = 0; i < list.length; i++) list[i]!.flush();
}
