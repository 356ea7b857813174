/**
 * How stored values are written: JSON in which Buffers are `{"$b64": "…"}`, and messages as a JSON
 * header followed by the raw payload (a payload is never re-encoded).
 */
import type { Message } from '../message.js';

function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  if (Buffer.isBuffer(raw)) return { $b64: raw.toString('base64') };
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const o = value as Record<string, unknown>;
    if (typeof o['$b64'] === 'string' && Object.keys(o).length === 1) return Buffer.from(o['$b64'], 'base64');
  }
  return value;
}

/** A value as JSON with its Buffers kept. */
export function encodeJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value, replacer), 'utf8');
}

export function decodeJson<T>(data: Buffer | string): T {
  return JSON.parse(typeof data === 'string' ? data : data.toString('utf8'), reviver) as T;
}

/** A message: 4-byte header length, the JSON header (everything but the payload), the payload. */
export function encodeMessage(m: Message): Buffer {
  // built by hand: no replacer walk (the only Buffer besides the payload is correlationData)
  const p = m.properties;
  const props = p.correlationData === undefined ? p : { ...p, correlationData: { $b64: p.correlationData.toString('base64') } };
  const header = JSON.stringify({ id: m.id, topic: m.topic, qos: m.qos, retain: m.retain, properties: props, from: m.from, createdAt: m.createdAt, expiresAt: m.expiresAt });
  const n = Buffer.byteLength(header);
  const out = Buffer.allocUnsafe(4 + n + m.payload.length);
  out.writeUInt32BE(n, 0);
  out.write(header, 4, 'utf8');
  m.payload.copy(out, 4 + n);
  return out;
}

export function decodeMessage(data: Buffer): Message {
  if (data.length < 4) throw new Error('stored message too short');
  const n = data.readUInt32BE(0);
  if (4 + n > data.length) throw new Error('stored message header overruns its value');
  const header = decodeJson<Omit<Message, 'payload'>>(data.subarray(4, 4 + n));
  return { ...header, payload: Buffer.from(data.subarray(4 + n)) };
}
