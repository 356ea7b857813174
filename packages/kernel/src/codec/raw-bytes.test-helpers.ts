/** Raw packet construction for the codec's strictness tests. */
import { expect } from 'vitest';
import { DecodeError } from './decode-error.js';
import { Decoder } from './decoder.js';
import type { Packet } from './packets.js';

// Raw packet construction. number: one byte; string: an MQTT string (2-byte length + UTF-8);
// Buffer: raw bytes; arrays nest.
export type Bytes = number | string | Buffer | readonly Bytes[];
export function bytes(...parts: Bytes[]): Buffer {
  const out: number[] = [];
  const add = (part: Bytes): void => {
    if (typeof part === 'number') out.push(part);
    else if (typeof part === 'string') add(raw(...Buffer.from(part, 'utf8')));
    else if (Buffer.isBuffer(part)) out.push(...part);
    else for (const p of part) add(p);
  };
  for (const part of parts) add(part);
  return Buffer.from(out);
}
export const u16 = (n: number): number[] => [n >> 8, n & 0xff];
/** A string field holding these exact bytes, valid UTF-8 or not. */
export const raw = (...b: number[]): Buffer => Buffer.from([b.length >> 8, b.length & 0xff, ...b]);
export function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}
export const packet = (first: number, ...body: Bytes[]): Buffer => {
  const b = bytes(...body);
  return Buffer.concat([Buffer.from([first, ...varint(b.length)]), b]);
};
export const props = (...parts: Bytes[]): Buffer => {
  const b = bytes(...parts);
  return Buffer.concat([Buffer.from(varint(b.length)), b]);
};

export function decode(version: 0 | 3 | 4 | 5, buf: Buffer, maxPacketSize = 0): Packet | null {
  const decoder = new Decoder({ maxPacketSize });
  decoder.protocolVersion = version;
  decoder.push(buf);
  return decoder.next();
}
export function expectCode(version: 0 | 3 | 4 | 5, buf: Buffer, reasonCode: number): DecodeError {
  try {
    decode(version, buf);
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as DecodeError).reasonCode).toBe(reasonCode);
    return err as DecodeError;
  }
  throw new Error('expected a DecodeError');
}
export const MALFORMED = 0x81;
export const PROTOCOL = 0x82;
