#!/usr/bin/env node
/**
 * Load for the persistent-session benchmark, in its own process: MQTT 3.1.1 over raw sockets (no client
 * library in the way). Subscribers keep their sessions (clean session 0, subscribed at QoS 1 and
 * acknowledging every PUBLISH); publishers (clean) send QoS 1 with a window of unacknowledged messages
 * each. After a warm-up, messages received by the subscribers are counted for `--duration` seconds;
 * the payload carries its send time, for latency. Prints one JSON line.
 *
 *   node persistent-load.mjs --port P --pubs 20 --subs 20 --size 64 --window 10 --warmup 3 --duration 15 --prefix run1
 */
import { connect } from 'node:net';

const opts = { port: 0, pubs: 20, subs: 20, size: 64, window: 10, warmup: 3, duration: 15, prefix: 'p' };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  const v = process.argv[i + 1];
  opts[k] = k === 'prefix' ? v : Number(v);
}

function varint(n) {
  const out = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

function str(s) {
  const b = Buffer.from(s, 'utf8');
  const l = Buffer.alloc(2);
  l.writeUInt16BE(b.length);
  return Buffer.concat([l, b]);
}

function packet(first, body) {
  return Buffer.concat([Buffer.from([first]), varint(body.length), body]);
}

function connectPacket(clientId, clean) {
  return packet(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, clean ? 0x02 : 0x00, 0, 60]), str(clientId)]));
}

function subscribePacket(id, filter) {
  const h = Buffer.alloc(2);
  h.writeUInt16BE(id);
  return packet(0x82, Buffer.concat([h, str(filter), Buffer.from([1])]));
}

/** Frames from a byte stream: calls onPacket(type, flags, body). */
function framer(onPacket) {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    let off = 0;
    for (;;) {
      if (buf.length - off < 2) break;
      let len = 0;
      let mul = 1;
      let i = off + 1;
      let done = false;
      for (; i < buf.length && i < off + 5; i++) {
        len += (buf[i] & 0x7f) * mul;
        mul *= 128;
        if ((buf[i] & 0x80) === 0) {
          done = true;
          i++;
          break;
        }
      }
      if (!done || buf.length - i < len) break;
      onPacket(buf[off] >> 4, buf[off] & 0x0f, buf.subarray(i, i + len));
      off = i + len;
    }
    buf = off === buf.length ? Buffer.alloc(0) : buf.subarray(off);
  };
}

function open(clientId, clean, onPacket) {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: opts.port });
    s.setNoDelay(true);
    let ready = false;
    s.on('data', framer((type, flags, body) => {
      if (!ready && type === 2) {
        ready = true;
        if (body[1] !== 0) reject(new Error(`${clientId}: CONNACK ${body[1]}`));
        else resolve(s);
        return;
      }
      onPacket(s, type, flags, body);
    }));
    s.on('error', (err) => (ready ? undefined : reject(err)));
    s.write(connectPacket(clientId, clean));
  });
}

const state = { measuring: false, stopped: false, recv: 0, sent: 0, acked: 0, lat: [] };
const PUBACK = Buffer.from([0x40, 0x02, 0, 0]);

async function main() {
  const subs = [];
  for (let i = 0; i < opts.subs; i++) {
    const subacked = {};
    const p = new Promise((r) => (subacked.resolve = r));
    const s = await open(`${opts.prefix}-sub-${i}`, false, (sock, type, flags, body) => {
      if (type === 9) return subacked.resolve();
      if (type !== 3) return;
      const tl = body.readUInt16BE(0);
      const qos = (flags >> 1) & 3;
      let off = 2 + tl;
      if (qos > 0) {
        const ack = Buffer.from(PUBACK);
        ack[2] = body[off];
        ack[3] = body[off + 1];
        sock.write(ack);
        off += 2;
      }
      if (state.measuring) {
        state.recv++;
        if ((state.recv & 15) === 0) state.lat.push(Date.now() - Number(body.readBigUInt64BE(off)));
      }
    });
    s.write(subscribePacket(1, `bench/p/${i % opts.pubs}`));
    await p;
    subs.push(s);
  }

  const payloadRest = Buffer.alloc(Math.max(0, opts.size - 8), 0x61);
  const pubs = [];
  for (let i = 0; i < opts.pubs; i++) {
    const topic = str(`bench/p/${i}`);
    let nextId = 1;
    let outstanding = 0;
    const sendOne = (sock) => {
      const id = nextId;
      nextId = nextId === 0xffff ? 1 : nextId + 1;
      const head = Buffer.alloc(2 + 8);
      head.writeUInt16BE(id, 0);
      head.writeBigUInt64BE(BigInt(Date.now()), 2);
      sock.write(packet(0x32, Buffer.concat([topic, head, payloadRest])));
      outstanding++;
      if (state.measuring) state.sent++;
    };
    const s = await open(`${opts.prefix}-pub-${i}`, true, (sock, type) => {
      if (type !== 4) return;
      outstanding--;
      if (state.measuring) state.acked++;
      if (!state.stopped) while (outstanding < opts.window) sendOne(sock);
    });
    pubs.push({ s, start: () => { while (outstanding < opts.window) sendOne(s); } });
  }

  for (const p of pubs) p.start();
  await new Promise((r) => setTimeout(r, opts.warmup * 1000));
  state.measuring = true;
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, opts.duration * 1000));
  const secs = (Date.now() - t0) / 1000;
  const recv = state.recv;
  const sent = state.sent;
  const acked = state.acked;
  state.measuring = false;
  state.stopped = true;
  await new Promise((r) => setTimeout(r, 1000));
  for (const p of pubs) p.s.destroy();
  // DISCONNECT: the sessions stay
  for (const s of subs) s.end(Buffer.from([0xe0, 0]));
  const lat = state.lat.sort((a, b) => a - b);
  const q = (x) => (lat.length === 0 ? null : lat[Math.min(lat.length - 1, Math.floor(x * lat.length))]);
  process.stdout.write(`${JSON.stringify({ recv_per_s: recv / secs, sent_per_s: sent / secs, acked_per_s: acked / secs, p50_ms: q(0.5), p99_ms: q(0.99), seconds: secs })}\n`);
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
