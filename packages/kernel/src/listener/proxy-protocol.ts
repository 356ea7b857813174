/**
 * PROXY protocol v1 (text) and v2 (binary) headers, sent by a load balancer before the client's bytes:
 * they carry the client's real address. A listener with proxy_protocol on requires one.
 */
import type { Socket } from 'node:net';
import type { SocketAddress } from '@rmqtt-ts/plugin-api';
import { normalizeIp } from './transport.js';

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_MAX = 107;

export interface ProxyHeader {
  /** The client's address, or undefined for LOCAL / UNKNOWN (the socket's own address applies). */
  remote: SocketAddress | undefined;
  /** Bytes after the header (the start of the MQTT stream). */
  rest: Buffer;
}

/**
 * An IPv6 address in the form a socket reports it: compressed (RFC 5952, via the URL serialiser), and an
 * IPv4-mapped address as plain IPv4.
 */
function formatIpv6(b: Buffer): string {
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return normalizeIp(new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1));
}

/** Parse a header from the start of buf: the header, null if more bytes are needed; throws if invalid. */
export function parseProxyHeader(buf: Buffer): ProxyHeader | null {
  if (buf.length === 0) return null;
  if (buf[0] === 0x0d) {
    if (buf.length < 16) {
      if (!V2_SIGNATURE.subarray(0, buf.length).equals(buf.subarray(0, Math.min(buf.length, 12)))) throw new Error('bad PROXY v2 signature');
      return null;
    }
    if (!buf.subarray(0, 12).equals(V2_SIGNATURE)) throw new Error('bad PROXY v2 signature');
    const verCmd = buf[12]!;
    if (verCmd >> 4 !== 2) throw new Error('unsupported PROXY version');
    const fam = buf[13]!;
    const len = buf.readUInt16BE(14);
    if (buf.length < 16 + len) return null;
    const body = buf.subarray(16, 16 + len);
    const rest = buf.subarray(16 + len);
    if ((verCmd & 0x0f) === 0) return { remote: undefined, rest }; // LOCAL
    if (fam >> 4 === 1 && body.length >= 12) {
      return { remote: { ip: `${body[0]}.${body[1]}.${body[2]}.${body[3]}`, port: body.readUInt16BE(8) }, rest };
    }
    if (fam >> 4 === 2 && body.length >= 36) {
      return { remote: { ip: formatIpv6(body.subarray(0, 16)), port: body.readUInt16BE(32) }, rest };
    }
    return { remote: undefined, rest };
  }
  const end = buf.indexOf('\r\n');
  if (end < 0) {
    if (buf.length > V1_MAX) throw new Error('PROXY v1 header too long');
    if (!'PROXY '.startsWith(buf.subarray(0, Math.min(6, buf.length)).toString('latin1'))) throw new Error('missing PROXY header');
    return null;
  }
  const line = buf.subarray(0, end).toString('latin1');
  const parts = line.split(' ');
  if (parts[0] !== 'PROXY') throw new Error('missing PROXY header');
  const rest = buf.subarray(end + 2);
  if (parts[1] === 'UNKNOWN') return { remote: undefined, rest };
  if ((parts[1] !== 'TCP4' && parts[1] !== 'TCP6') || parts.length !== 6) throw new Error('bad PROXY v1 header');
  const port = Number(parts[4]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error('bad PROXY v1 port');
  return { remote: { ip: normalizeIp(parts[2]), port }, rest };
}

/** Read the header off a socket (data events), within a timeout. The socket is left paused. */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxyHeader> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (err: Error | undefined, r?: ProxyHeader): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (err) reject(err);
      else resolve(r!);
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let r: ProxyHeader | null;
      try {
        r = parseProxyHeader(buf);
      } catch (err) {
        done(err as Error);
        return;
      }
      if (r !== null) done(undefined, r);
    };
    const onClose = (): void => done(new Error('closed before PROXY header'));
    const timer = setTimeout(() => done(new Error('PROXY header timeout')), timeoutMs);
    timer.unref();
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.resume();
  });
}
