/** Helpers around mqtt.js clients. */
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';

/** Connect an mqtt.js client and wait for CONNACK (reconnection off, so failures surface). */
export function connectClient(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
    const onError = (err: Error): void => {
      client.end(true);
      reject(err);
    };
    client.once('connect', () => {
      client.off('error', onError);
      resolve(client);
    });
    client.once('error', onError);
    client.once('close', () => reject(new Error('connection closed before CONNACK')));
  });
}

export interface Received {
  topic: string;
  payload: Buffer;
  packet: IPublishPacket;
}

/** Record every message a client receives. */
export function recorder(client: MqttClient): { messages: Received[]; next(timeoutMs?: number): Promise<Received>; waitFor(n: number, timeoutMs?: number): Promise<Received[]> } {
  const messages: Received[] = [];
  let waiters: (() => void)[] = [];
  client.on('message', (topic, payload, packet) => {
    messages.push({ topic, payload, packet });
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  });
  let cursor = 0;
  const waitFor = (n: number, timeoutMs = 3000): Promise<Received[]> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (messages.length >= n) {
          resolve(messages.slice(0, n));
          return true;
        }
        return false;
      };
      if (check()) return;
      const timer = setTimeout(() => reject(new Error(`got ${messages.length} of ${n} messages within ${timeoutMs} ms`)), timeoutMs);
      const loop = (): void => {
        if (check()) clearTimeout(timer);
        else waiters.push(loop);
      };
      waiters.push(loop);
    });
  return {
    messages,
    waitFor,
    async next(timeoutMs = 3000) {
      await waitFor(cursor + 1, timeoutMs);
      return messages[cursor++]!;
    },
  };
}

/** End a client and wait for it. */
export function endClient(client: MqttClient, force = false): Promise<void> {
  return new Promise((resolve) => client.end(force, {}, () => resolve()));
}

export function subscribe(client: MqttClient, topic: string | string[], options: mqtt.IClientSubscribeOptions = { qos: 0 }): Promise<mqtt.ISubscriptionGrant[]> {
  return client.subscribeAsync(topic, options);
}
