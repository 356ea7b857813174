import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import retainer from '@rmqtt-ts/plugin-retainer';
import { connectClient, endClient, recorder, startBroker, type TestBroker } from '@rmqtt-ts/testkit';

describe('smoke', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startBroker({ plugins: [retainer] });
  });
  afterAll(async () => {
    await b?.stop();
  });

  for (const protocolVersion of [4, 5] as const) {
    it(`publishes and subscribes with mqtt.js v${protocolVersion}`, async () => {
      const sub = await connectClient(b.url(), { protocolVersion });
      const pub = await connectClient(b.url(), { protocolVersion });
      const rec = recorder(sub);
      await sub.subscribeAsync('a/+', { qos: 1 });
      await pub.publishAsync('a/b', 'hello', { qos: 1 });
      const m = await rec.next();
      expect(m.topic).toBe('a/b');
      expect(m.payload.toString()).toBe('hello');
      await endClient(sub);
      await endClient(pub);
    });
  }
});
