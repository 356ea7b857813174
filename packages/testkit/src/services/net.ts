/** Loopback ports for the services tests start. */
import { createConnection, createServer } from 'node:net';

/** A free loopback port (and, with `plus`, port + plus free too: a cluster node's bus port). */
export async function freePort(plus?: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    if (plus === undefined) return port;
    if (port + plus > 65535) continue;
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port + plus, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port pair found');
}

/** Resolves once something accepts TCP connections on the loopback port. */
export async function waitForPort(port: number, ms: number, what = 'server'): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = createConnection({ host: '127.0.0.1', port }, () => {
        c.end();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} on ${port} did not come up within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

