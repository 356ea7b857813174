/** Largest value a four-byte Variable Byte Integer holds [MQTT-1.5.5]. */
export const MAX_VARINT = 268_435_455;

export function varintLength(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x20_0000) return 3;
  if (value <= MAX_VARINT) return 4;
  throw new RangeError(`${value} does not fit a Variable Byte Integer (at most ${MAX_VARINT})`);
}

/** Writes the minimal encoding [MQTT-1.5.5-1]; returns the offset after it. */
export function writeVarint(buf: Buffer, pos: number, value: number): number {
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    buf[pos++] = byte;
  } while (value > 0);
  return pos;
}
