/**
 * @rmqtt-ts/plugin-http-api — the admin HTTP API of RMQTT, under /api/v1 on `http_laddr`: brokers and
 * nodes, clients, subscriptions, routes, retained messages, publish / subscribe / unsubscribe, plugins
 * started, stopped and reconfigured at run time, stats, metrics and Prometheus. It refuses to stop (as in
 * RMQTT: it is how the other plugins are stopped); it closes when the broker shuts down.
 */
import { RmqttError, definePlugin } from '@rmqtt-ts/plugin-api';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { configSchema, type HttpApiConfig } from './config.js';

export { configSchema, type HttpApiConfig } from './config.js';

async function listen(app: FastifyInstance, addr: { host: string; port: number }): Promise<string> {
  try {
    await app.listen({ host: addr.host, port: addr.port });
  } catch (err) {
    await app.close().catch(() => undefined);
    throw new RmqttError('ERR_CONFIG', `http_laddr = "${addr.host}:${addr.port}": cannot listen: ${(err as Error).message}`, { cause: err });
  }
  const a = app.server.address();
  return a !== null && typeof a === 'object' ? `${a.address}:${a.port}` : `${addr.host}:${addr.port}`;
}

export default definePlugin<HttpApiConfig>({
  name: 'http-api',
  apiVersion: '^1.0.0',
  description: 'HTTP API: clients, subscriptions, publishing, plugins, stats and Prometheus metrics',
  configSchema,
  create(ctx) {
    let config = ctx.config;
    let app: FastifyInstance | undefined;
    let bound = '';
    const api = { broker: ctx.broker, logger: ctx.logger, config: () => config };

    return {
      async start() {
        if (app !== undefined) return;
        const next = buildApp(api);
        bound = await listen(next, config.http_laddr);
        app = next;
        ctx.logger.info({ addr: bound }, 'http api listening');
      },
      stop() {
        // the API stays: without it no plugin could be managed any more
        return false;
      },
      async reload(next) {
        const moved = next.http_laddr.host !== config.http_laddr.host || next.http_laddr.port !== config.http_laddr.port || next.http_body_limit !== config.http_body_limit;
        if (!moved || app === undefined) {
          config = next;
          return;
        }
        // the new server listens before the old one closes; if it cannot, the old one stays
        const previous = config;
        config = next;
        const replacement = buildApp(api);
        let addr: string;
        try {
          addr = await listen(replacement, next.http_laddr);
        } catch (err) {
          config = previous;
          throw err;
        }
        const old = app;
        app = replacement;
        bound = addr;
        ctx.logger.info({ addr }, 'http api listening');
        // the request that asked for the reload is still being answered by the old server
        setImmediate(() => void old.close());
      },
      attrs() {
        return { http_laddr: bound };
      },
      async dispose() {
        await app?.close();
        app = undefined;
      },
    };
  },
});
