/**
 * @rmqtt-ts/plugin-web-hook — RMQTT's web hooks: client, session and message events, chosen per event by
 * rules (with topic filters), posted as JSON to HTTP(S) URLs or appended as JSON lines to files. Events
 * wait in one bounded queue and go out `concurrency_limit` at a time, one per client at a time so each
 * client's events arrive in order; a failing URL is retried with backoff. Nothing here ever holds up
 * MQTT: an event that does not fit in the queue is dropped, counted (`web_hook.dropped`) and logged.
 */
import { definePlugin, filterCovers, topicMatches } from '@rmqtt-ts/plugin-api';
import {
  bareFilter,
  connackText,
  connectBody,
  deliveryBody,
  dropReason,
  droppedBody,
  eventTime,
  optsJson,
  publishBody,
  requestOptions,
  toClient,
  who,
} from './bodies.js';
import { configSchema, ruleUrls, type EventName, type Rule, type WebHookConfig } from './config.js';
import { EventQueue, type QueuedEvent } from './queue.js';
import { Sender } from './sender.js';

export { configSchema, EVENTS, type WebHookConfig } from './config.js';
export { EventQueue } from './queue.js';

/** Which part of an event its rules' topics are matched against. */
type TopicKind = 'topic' | 'filter' | 'none';

export default definePlugin<WebHookConfig>({
  name: 'web-hook',
  apiVersion: '^1.0.0',
  description: 'Web hooks: client, session and message events to HTTP endpoints and files',
  configSchema,
  create(ctx) {
    const metrics = ctx.broker.metrics;
    const sender = new Sender();
    let stopping = new AbortController();
    const stats = { queued: 0, sent: 0, failed: 0, dropped: 0 };
    let overflowLogged = 0;
    let overflowSinceLog = 0;

    const queue = new EventQueue({
      capacity: ctx.config.queue_capacity,
      concurrency: ctx.config.concurrency_limit,
      send: async (e) => {
        const c = ctx.config;
        const results = await Promise.all(
          e.urls.map((url) =>
            sender.send(url, e.body, {
              timeoutMs: c.http_timeout,
              maxElapsedMs: c.retry_max_elapsed_time,
              initialIntervalMs: c.retry_initial_interval,
              multiplier: c.retry_multiplier,
              signal: stopping.signal,
            }),
          ),
        );
        results.forEach((r, i) => {
          if (r.ok) {
            stats.sent++;
            metrics.inc('web_hook.sent');
          } else {
            stats.failed++;
            metrics.inc('web_hook.failed');
            ctx.logger.warn({ url: e.urls[i], action: e.action, attempts: r.attempts, error: r.error }, 'web hook delivery failed');
          }
        });
      },
      onOverflow: () => {
        stats.dropped++;
        metrics.inc('web_hook.dropped');
        overflowSinceLog++;
        const now = Date.now();
        if (now - overflowLogged >= 10_000) {
          ctx.logger.warn({ dropped: overflowSinceLog, capacity: ctx.config.queue_capacity }, 'web hook queue full: events dropped');
          overflowLogged = now;
          overflowSinceLog = 0;
        }
      },
    });

    /** Queue one body per matching rule of the event. */
    function emit(event: EventName, key: string, kind: TopicKind, topic: string, build: () => Record<string, unknown>): void {
      const rules: Rule[] | undefined = ctx.config.rule[event];
      if (rules === undefined || rules.length === 0) return;
      let body: Record<string, unknown> | undefined;
      for (const r of rules) {
        if (kind !== 'none' && r.topics !== undefined && r.topics.length > 0) {
          const hit = kind === 'topic' ? r.topics.some((f) => topicMatches(f, topic)) : r.topics.some((f) => filterCovers(f, topic));
          if (!hit) continue;
        }
        const urls = ruleUrls(r, ctx.config);
        if (urls.length === 0) continue;
        body ??= build();
        const item: QueuedEvent = { key, action: r.action, urls, body: JSON.stringify({ action: r.action, ...body }) };
        if (queue.push(item)) stats.queued++;
      }
    }

    const now = (): number => Date.now();
    const withTime = (b: Record<string, unknown>): Record<string, unknown> => ({ ...b, time: eventTime(now()) });

    return {
      init() {
        const h = ctx.hooks;
        h.on('client.connect', ({ connectInfo }) => {
          emit('client_connect', connectInfo.clientId, 'none', '', () => withTime(connectBody(connectInfo)));
        });
        h.on('client.connack', ({ connectInfo, reasonCode }) => {
          emit('client_connack', connectInfo.clientId, 'none', '', () => withTime({ ...connectBody(connectInfo), conn_ack: connackText(reasonCode, connectInfo.protoVer) }));
        });
        h.on('client.connected', ({ client, sessionPresent }) => {
          emit('client_connected', client.clientId, 'none', '', () => withTime({ ...connectBody(client.connectInfo), connected_at: client.connectedAt, session_present: sessionPresent }));
        });
        h.on('client.disconnected', ({ client, reason }) => {
          emit('client_disconnected', client.clientId, 'none', '', () => withTime({ ...who(client.connectInfo), disconnected_at: now(), reason: reason.message }));
        });
        h.on('client.subscribe', (req, { client }) => {
          const topic = bareFilter(req.filter);
          emit('client_subscribe', client.clientId, 'filter', topic, () =>
            withTime({ ...who(client.connectInfo), topic, opts: optsJson(requestOptions(req.filter, req.options), client.connectInfo.protoVer === 5) }),
          );
          return req;
        });
        h.on('client.unsubscribe', (filter, { client }) => {
          const topic = bareFilter(filter);
          emit('client_unsubscribe', client.clientId, 'filter', topic, () => withTime({ ...who(client.connectInfo), topic }));
          return filter;
        });
        h.on('session.created', ({ client }) => {
          emit('session_created', client.clientId, 'none', '', () => withTime({ ...who(client.connectInfo), created_at: now() }));
        });
        h.on('session.terminated', ({ client, reason }) => {
          emit('session_terminated', client.clientId, 'none', '', () => withTime({ ...who(client.connectInfo), reason }));
        });
        h.on('session.subscribed', ({ client, subscription }) => {
          emit('session_subscribed', client.clientId, 'filter', subscription.filter, () =>
            withTime({ ...who(client.connectInfo), topic: subscription.filter, opts: optsJson(subscription.options, client.connectInfo.protoVer === 5) }),
          );
        });
        h.on('session.unsubscribed', ({ client, filter }) => {
          const topic = bareFilter(filter);
          emit('session_unsubscribed', client.clientId, 'filter', topic, () => withTime({ ...who(client.connectInfo), topic }));
        });
        // after the publish ACL: a refused message never gets here
        h.on('message.publish', (message) => {
          emit('message_publish', message.from.clientId, 'topic', message.topic, () => withTime(publishBody(message)));
          return message;
        });
        h.on('message.delivered', ({ client, message, qos }) => {
          if (message.from.type === 'system') return;
          emit('message_delivered', client.clientId, 'topic', message.topic, () => withTime(deliveryBody(message, toClient(client), qos, now())));
        });
        h.on('message.acked', ({ client, message }) => {
          if (message.from.type === 'system') return;
          emit('message_acked', client.clientId, 'topic', message.topic, () => withTime(deliveryBody(message, toClient(client), message.qos, now())));
        });
        h.on('message.dropped', ({ clientId, message, reason }) => {
          if (message.from.type === 'system') return;
          const to = clientId === undefined ? undefined : { node: ctx.broker.nodeId, clientid: clientId };
          emit('message_dropped', clientId ?? message.from.clientId, 'none', '', () => withTime(droppedBody(message, to, dropReason(reason), now())));
        });
        h.on('offline.message', ({ clientId, message }) => {
          if (message.from.type === 'system') return;
          emit('offline_message', clientId, 'topic', message.topic, () => withTime(deliveryBody(message, { node: ctx.broker.nodeId, clientid: clientId }, message.qos, now())));
        });
      },
      start() {
        stopping = new AbortController();
      },
      async stop() {
        // retries stop at once; what has not gone out is dropped (and counted)
        stopping.abort();
        queue.clear();
        await queue.drained();
      },
      reload(next) {
        queue.resize(next.queue_capacity, next.concurrency_limit);
      },
      attrs() {
        return { ...stats, waiting: queue.waiting, in_flight: queue.inFlight, rules: Object.values(ctx.config.rule).reduce((n, r) => n + (r?.length ?? 0), 0) };
      },
      async dispose() {
        stopping.abort();
        queue.clear();
        await queue.drained();
        await sender.close();
      },
    };
  },
});

