import { isUtf8 } from 'node:buffer';
import { malformed } from './decode-error.js';

const EMPTY = Buffer.alloc(0);

/**
 * A bounded cursor over one packet's bytes. Every read checks `end` first, so a short or lying packet
 * becomes a DecodeError and never a RangeError from Buffer. `end` is narrowed while a property list is
 * read, so a property cannot run past its Property Length.
 */
export class Reader {
  buf: Buffer = EMPTY;
  pos = 0;
  end = 0;
  /** Packet name for error messages ("PUBLISH", "CONNECT will properties", ...). */
  packet = '';

  reset(buf: Buffer, pos: number, end: number, packet: string): void {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    this.packet = packet;
  }

  /** Drops the reference to the input chunk once the packet is decoded. */
  release(): void {
    this.buf = EMPTY;
    this.pos = 0;
    this.end = 0;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  u8(field: string): number {
    if (this.pos >= this.end) throw this.#short(field);
    return this.buf[this.pos++]!;
  }

  u16(field: string): number {
    if (this.end - this.pos < 2) throw this.#short(field);
    const value = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return value;
  }

  u32(field: string): number {
    if (this.end - this.pos < 4) throw this.#short(field);
    const value = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return value;
  }

  /** Variable Byte Integer, at most four bytes [MQTT-1.5.5]. */
  varint(field: string): number {
    let value = 0;
    let multiplier = 1;
    for (let i = 0; i < 4; i++) {
      const byte = this.u8(field);
      value += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) return value;
      multiplier *= 128;
    }
    throw malformed(`${this.packet} ${field} is a Variable Byte Integer longer than 4 bytes`);
  }

  /**
   * UTF-8 Encoded String: well-formed UTF-8 (no surrogates, no overlongs) [MQTT-1.5.4-1] and no U+0000
   * [MQTT-1.5.4-2]. Checked on the raw bytes because Buffer#toString would quietly turn bad sequences
   * into U+FFFD.
   */
  utf8(field: string): string {
    const length = this.u16(field);
    const start = this.pos;
    const end = start + length;
    if (end > this.end) throw this.#pastEnd(field);
    const buf = this.buf;
    let ascii = true;
    for (let i = start; i < end; i++) {
      const byte = buf[i]!;
      // A 0x00 byte can only be U+0000 in UTF-8: every byte of a multi-byte sequence has the top bit set.
      if (byte === 0) throw malformed(`${this.packet} ${field} contains U+0000 [MQTT-1.5.4-2]`);
      if (byte >= 0x80) ascii = false;
    }
    if (!ascii && !isUtf8(buf.subarray(start, end))) {
      throw malformed(`${this.packet} ${field} is not well-formed UTF-8 [MQTT-1.5.4-1]`);
    }
    this.pos = end;
    return buf.toString(ascii ? 'latin1' : 'utf8', start, end);
  }

  /** Binary Data (2-byte length), copied out so it never pins the read chunk. */
  binary(field: string): Buffer {
    const length = this.u16(field);
    const start = this.pos;
    const end = start + length;
    if (end > this.end) throw this.#pastEnd(field);
    this.pos = end;
    return copyOut(this.buf, start, end);
  }

  /** Everything up to `end` (a PUBLISH payload), copied out. */
  rest(): Buffer {
    const start = this.pos;
    this.pos = this.end;
    return copyOut(this.buf, start, this.end);
  }

  /** Trailing bytes after the last field are a Malformed Packet. */
  expectEnd(): void {
    if (this.pos !== this.end) {
      throw malformed(`${this.packet} has ${this.end - this.pos} unexpected byte(s) after its last field`);
    }
  }

  #short(field: string): Error {
    return malformed(`${this.packet} is too short: ${field} is missing`);
  }

  #pastEnd(field: string): Error {
    return malformed(`${this.packet} ${field} runs past the end of the packet`);
  }
}

export function copyOut(buf: Buffer, start: number, end: number): Buffer {
  const length = end - start;
  if (length <= 0) return Buffer.alloc(0);
  const out = Buffer.allocUnsafe(length);
  buf.copy(out, 0, start, end);
  return out;
}
