/**
 * Socket options of accepted connections (SPEC section 1, listener keys `tcp_keepalive`): read back from
 * the operating system's own socket table with `ss`, so the test sees what the kernel applied, not what
 * the broker meant to apply.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClientPool, connectAccepted, startBroker, uniqueId, type TestBroker } from '@rmqtt-ts/testkit';

/** The `ss` line of the broker's end of the connection whose client side uses `clientPort`. */
function brokerSide(brokerPort: number, clientPort: number): string {
  const out = execFileSync('ss', ['-tnoH', 'state', 'established', `( sport = :${brokerPort} and dport = :${clientPort} )`], { encoding: 'utf8' });
  const lines = out.split('\n').filter((l) => l.trim() !== '');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe.skipIf(process.platform !== 'linux')('tcp_keepalive', () => {
  let b: TestBroker;
  const pool = new RawClientPool();

  beforeAll(async () => {
    b = await startBroker({
      listeners: {
        'tcp.ka': { tcp_keepalive: true },
        'tcp.noka': { tcp_keepalive: false },
        'ws.ka': { tcp_keepalive: true },
      },
    });
  });
  afterAll(async () => {
    pool.destroyAll();
    await b?.stop();
  });

  it('true: the broker end of every accepted TCP connection runs a keepalive timer', async () => {
    for (let i = 0; i < 3; i++) {
      const { client } = await connectAccepted(pool, b.port('tcp.ka'), { clientId: uniqueId('ka') });
      expect(brokerSide(b.port('tcp.ka'), client.socket.localPort!)).toMatch(/timer:\(keepalive,/);
    }
  });

  it('false: no keepalive timer on the broker end', async () => {
    const { client } = await connectAccepted(pool, b.port('tcp.noka'), { clientId: uniqueId('noka') });
    expect(brokerSide(b.port('tcp.noka'), client.socket.localPort!)).not.toMatch(/keepalive/);
  });

  it('true on a WebSocket listener: the TCP connection under the WebSocket has the timer too', async () => {
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`ws://127.0.0.1:${b.port('ws.ka')}/mqtt`, 'mqtt');
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    try {
      const localPort = (ws as unknown as { _socket: { localPort: number } })._socket.localPort;
      expect(brokerSide(b.port('ws.ka'), localPort)).toMatch(/timer:\(keepalive,/);
    } finally {
      ws.terminate();
    }
  });
});
