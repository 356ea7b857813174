/**
 * @rmqtt-ts/plugin-sys-topic — RMQTT's `$SYS` topics: `$SYS/brokers/{node}/stats` and `…/metrics` every
 * `publish_interval`, and JSON events for clients (`clients/{clientid}/connected|disconnected`) and
 * sessions (`session/{clientid}/created|terminated|subscribed|unsubscribed`). Published by the broker
 * itself (origin "system", never retained). It may be stopped and started at run time.
 */
import { definePlugin, rmqttTime, subscriptionOptionsJson, type ClientInfo } from '@rmqtt-ts/plugin-api';
import { configSchema, type SysTopicConfig } from './config.js';

export { configSchema, type SysTopicConfig } from './config.js';

/** Local "YYYY-MM-DD HH:MM:SS.mmm", as RMQTT's `time` field. */
export const eventTime = (ms: number): string => rmqttTime(ms, true);

/** A client id as one topic level: `/`, `+`, `#` and `%` percent-encoded, so it cannot add levels or wildcards. */
export function topicLevel(clientId: string): string {
  return clientId.replace(/[%/+#]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

export default definePlugin<SysTopicConfig>({
  name: 'sys-topic',
  apiVersion: '^1.0.0',
  description: '$SYS topics: broker stats, metrics, client and session events',
  configSchema,
  create(ctx) {
    const b = ctx.broker;
    const node = b.nodeId;
    let timer: NodeJS.Timeout | undefined;

    const publish = (topic: string, body: Record<string, unknown>): void => {
      const c = ctx.config;
      const message = b.createMessage({
        topic,
        payload: Buffer.from(JSON.stringify(body)),
        qos: c.publish_qos,
        retain: false,
        expirySeconds: Math.ceil(c.message_expiry_interval / 1000),
        from: { type: 'system', clientId: 'system', username: 'system' },
      });
      b.publish(message).catch((err: unknown) => ctx.logger.warn({ err, topic }, '$SYS publish failed'));
    };

    /** The fields every client and session event starts with. */
    const who = (client: ClientInfo): Record<string, unknown> => {
      const a = client.connectInfo.remoteAddr;
      return { node, ipaddress: a.ip === '' ? null : `${a.ip}:${a.port}`, clientid: client.clientId, username: client.username ?? 'undefined' };
    };
    const base = `$SYS/brokers/${node}`;

    const periodic = (): void => {
      publish(`${base}/stats`, b.metrics.stats());
      publish(`${base}/metrics`, b.metrics.metrics());
    };
    const schedule = (): void => {
      if (timer !== undefined) clearInterval(timer);
      timer = setInterval(periodic, Math.max(1000, ctx.config.publish_interval));
      timer.unref();
    };

    return {
      init() {
        ctx.hooks.on('client.connected', ({ client, sessionPresent }) => {
          const ci = client.connectInfo;
          const now = Date.now();
          publish(`${base}/clients/${topicLevel(client.clientId)}/connected`, {
            ...who(client),
            keepalive: ci.keepalive,
            proto_ver: ci.protoVer,
            ...(ci.protoVer === 5 ? { clean_start: ci.cleanStart } : { clean_session: ci.cleanStart }),
            connected_at: client.connectedAt,
            session_present: sessionPresent,
            time: eventTime(now),
          });
        });
        ctx.hooks.on('client.disconnected', ({ client, reason }) => {
          const now = Date.now();
          publish(`${base}/clients/${topicLevel(client.clientId)}/disconnected`, {
            ...who(client),
            disconnected_at: now,
            reason: reason.message,
            time: eventTime(now),
          });
        });
        ctx.hooks.on('session.created', ({ client }) => {
          const now = Date.now();
          publish(`${base}/session/${topicLevel(client.clientId)}/created`, { ...who(client), created_at: now, time: eventTime(now) });
        });
        ctx.hooks.on('session.terminated', ({ client, reason }) => {
          publish(`${base}/session/${topicLevel(client.clientId)}/terminated`, { ...who(client), reason, time: eventTime(Date.now()) });
        });
        ctx.hooks.on('session.subscribed', ({ client, subscription }) => {
          publish(`${base}/session/${topicLevel(client.clientId)}/subscribed`, {
            ...who(client),
            topic: subscription.filter,
            opts: subscriptionOptionsJson(subscription.options, client.connectInfo.protoVer === 5),
            time: eventTime(Date.now()),
          });
        });
        ctx.hooks.on('session.unsubscribed', ({ client, filter }) => {
          publish(`${base}/session/${topicLevel(client.clientId)}/unsubscribed`, { ...who(client), topic: filter, time: eventTime(Date.now()) });
        });
      },
      start() {
        schedule();
      },
      stop() {
        if (timer !== undefined) clearInterval(timer);
        timer = undefined;
      },
      reload(next) {
        if (timer !== undefined && next.publish_interval !== ctx.config.publish_interval) {
          // ctx.config is replaced once this returns: schedule from the new value
          clearInterval(timer);
          timer = setInterval(periodic, Math.max(1000, next.publish_interval));
          timer.unref();
        }
      },
      attrs() {
        return { publish_qos: ctx.config.publish_qos, publish_interval_ms: ctx.config.publish_interval };
      },
      dispose() {
        if (timer !== undefined) clearInterval(timer);
        timer = undefined;
      },
    };
  },
});
