/**
 * The HTTP API under /api/v1: RMQTT's paths and success bodies, every input checked by a JSON schema,
 * errors as JSON `{ code, message }` with the status of the error table (400 bad input, 401 token, 404
 * unknown, 409 state conflict, 413 body too large, 503 unavailable).
 */
import { statfs } from 'node:fs/promises';
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { RmqttError, isRmqttError, topicMatches, type BrokerServices, type ClientSummary, type Logger, type QoS } from '@rmqtt-ts/plugin-api';
import type { HttpApiConfig } from './config.js';
import { brokerJson, clientIdJson, clientJson, nodeJson, parseTimeFilter, pluginJson, subscriptionJson, type NodeFacts } from './format.js';
import { PrometheusExporter } from './prometheus.js';

export interface ApiContext {
  readonly broker: BrokerServices;
  readonly logger: Logger;
  /** The config in force (read on every request, so a reload applies at once). */
  config(): HttpApiConfig;
}

interface RouteDoc {
  name: string;
  method: string;
  path: string;
  descr: string;
}

const NODE = { type: 'integer', minimum: 0, maximum: 4294967295 } as const;
const LIMIT = { type: 'integer', minimum: 0 } as const;
const QOS = { type: 'integer', enum: [0, 1, 2] } as const;

/** Where disk figures come from: the file system of the working directory. */
async function diskFacts(): Promise<{ total: number; free: number } | undefined> {
  try {
    const s = await statfs(process.cwd());
    return { total: s.blocks * s.bsize, free: s.bavail * s.bsize };
  } catch {
    return undefined;
  }
}

function tokenMatches(header: string | undefined, token: string): boolean {
  if (header === undefined) return false;
  const want = Buffer.from(`Bearer ${token}`);
  const got = Buffer.from(header);
  return got.length === want.length && timingSafeEqual(got, want);
}

export function buildApp(api: ApiContext): FastifyInstance {
  const cfg = api.config();
  const app = Fastify({
    logger: false,
    routerOptions: { ignoreTrailingSlash: true },
    bodyLimit: cfg.http_body_limit,
    // query values arrive as text: numbers and booleans are converted by the schemas
    ajv: { customOptions: { coerceTypes: true, removeAdditional: false, allErrors: false } },
  });
  const b = api.broker;
  const control = b.control;
  const routes: RouteDoc[] = [];
  const prometheus = new PrometheusExporter(b, () => api.config().prometheus_metrics_cache_interval, facts);

  async function facts(): Promise<NodeFacts> {
    return { nodeId: b.nodeId, version: b.version, startedAt: b.startedAt, connections: b.metrics.stats()['connections.count'] ?? 0, disk: await diskFacts() };
  }

  const requireNode = (node: number): void => {
    if (node !== b.nodeId) throw new RmqttError('ERR_NOT_FOUND', `node ${node} not found`);
  };
  const rowLimit = (limit: number | undefined): number => {
    const max = api.config().max_row_limit;
    return limit === undefined || limit === 0 || limit > max ? max : limit;
  };

  // ---- cross-cutting: token, request log, errors ----

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const token = api.config().http_bearer_token;
    // every request: this server serves nothing but the API, and a check by URL prefix could be
    // side-stepped by an encoding of the path that the router decodes
    if (token === null || token === '') return;
    if (!tokenMatches(req.headers.authorization, token)) {
      return reply.code(401).send({ code: 'ERR_UNAUTHORIZED', message: 'missing or wrong bearer token' });
    }
  });
  app.addHook('onResponse', async (req: FastifyRequest, reply: FastifyReply) => {
    if (api.config().http_request_log) {
      api.logger.info({ method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'http request');
    }
  });
  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    if (isRmqttError(err)) return reply.code(err.status).send({ code: err.code, message: err.message });
    if (err.validation !== undefined) {
      return reply.code(400).send({ code: 'ERR_BAD_REQUEST', message: `${err.validationContext ?? 'request'} ${err.validation[0]?.instancePath ?? ''} ${err.validation[0]?.message ?? err.message}`.replace(/\s+/g, ' ').trim() });
    }
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) api.logger.error({ err, method: req.method, url: req.url }, 'http api request failed');
    return reply.code(status).send({ code: status === 500 ? 'ERR_INTERNAL' : (err.code ?? 'ERR_BAD_REQUEST'), message: err.message });
  });
  app.setNotFoundHandler((req: FastifyRequest, reply: FastifyReply) => {
    void reply.code(404).send({ code: 'ERR_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });

  /** Register a route and list it under GET /api/v1. */
  function route(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    name: string,
    descr: string,
    schema: Record<string, unknown>,
    handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>,
  ): void {
    routes.push({ name, method, path: `/api/v1${path.replace(/:(\w+)/g, '{$1}')}`, descr });
    app.route({ method, url: `/api/v1${path}`, schema, handler });
  }

  const params = (props: Record<string, unknown>): Record<string, unknown> => ({
    params: { type: 'object', properties: props, required: Object.keys(props), additionalProperties: false },
  });

  // ---- brokers, nodes, health ----

  route('GET', '', 'list_apis', 'The routes of this API', {}, async () => routes);
  route('GET', '/brokers', 'get_brokers', 'Basic information of every node', {}, async () => [brokerJson(await facts(), Date.now())]);
  route('GET', '/brokers/:id', 'get_broker', 'Basic information of one node', params({ id: NODE }), async (req) => {
    requireNode((req.params as { id: number }).id);
    return brokerJson(await facts(), Date.now());
  });
  route('GET', '/nodes', 'get_nodes', 'Status of every node', {}, async () => [nodeJson(await facts(), Date.now())]);
  route('GET', '/nodes/:id', 'get_node', 'Status of one node', params({ id: NODE }), async (req) => {
    requireNode((req.params as { id: number }).id);
    return nodeJson(await facts(), Date.now());
  });
  route('GET', '/health/check', 'check_health', 'Health of every node', {}, async () => ({ running: true, nodes: [{ node_id: b.nodeId, running: true }] }));
  route('GET', '/health/check/:id', 'check_node_health', 'Health of one node', params({ id: NODE }), async (req) => {
    requireNode((req.params as { id: number }).id);
    return { node_id: b.nodeId, running: true };
  });

  // ---- clients ----

  const clientQuery = {
    querystring: {
      type: 'object',
      properties: {
        _limit: LIMIT,
        clientid: { type: 'string' },
        username: { type: 'string' },
        ip_address: { type: 'string' },
        connected: { type: 'boolean' },
        clean_start: { type: 'boolean' },
        session_present: { type: 'boolean' },
        proto_ver: { type: 'integer', enum: [3, 4, 5] },
        _like_clientid: { type: 'string' },
        _like_username: { type: 'string' },
        _gte_created_at: { type: 'string' },
        _lte_created_at: { type: 'string' },
        _gte_connected_at: { type: 'string' },
        _lte_connected_at: { type: 'string' },
        _gte_mqueue_len: LIMIT,
        _lte_mqueue_len: LIMIT,
      },
    },
  };
  type ClientQuery = {
    _limit?: number;
    clientid?: string;
    username?: string;
    ip_address?: string;
    connected?: boolean;
    clean_start?: boolean;
    session_present?: boolean;
    proto_ver?: number;
    _like_clientid?: string;
    _like_username?: string;
    _gte_created_at?: string;
    _lte_created_at?: string;
    _gte_connected_at?: string;
    _lte_connected_at?: string;
    _gte_mqueue_len?: number;
    _lte_mqueue_len?: number;
  };
  const timeFilter = (name: string, text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    const t = parseTimeFilter(text);
    if (t === undefined) throw new RmqttError('ERR_BAD_REQUEST', `querystring ${name}: expected "YYYY-MM-DD HH:MM:SS" or unix seconds, got "${text}"`);
    return t;
  };
  /** The clients a /clients query selects, at most _limit (capped by max_row_limit). */
  const searchClients = (q: ClientQuery): ClientSummary[] => {
    const gteCreated = timeFilter('_gte_created_at', q._gte_created_at);
    const lteCreated = timeFilter('_lte_created_at', q._lte_created_at);
    const gteConnected = timeFilter('_gte_connected_at', q._gte_connected_at);
    const lteConnected = timeFilter('_lte_connected_at', q._lte_connected_at);
    const limit = rowLimit(q._limit);
    const keep = (c: ClientSummary): boolean =>
      (q.clientid === undefined || c.clientId === q.clientid) &&
      (q.username === undefined || c.username === q.username) &&
      (q.ip_address === undefined || c.ipAddress === q.ip_address) &&
      (q.connected === undefined || c.connected === q.connected) &&
      (q.clean_start === undefined || c.cleanStart === q.clean_start) &&
      (q.session_present === undefined || c.sessionPresent === q.session_present) &&
      (q.proto_ver === undefined || c.protoVer === q.proto_ver) &&
      (q._like_clientid === undefined || c.clientId.includes(q._like_clientid)) &&
      (q._like_username === undefined || (c.username ?? '').includes(q._like_username)) &&
      (gteCreated === undefined || c.createdAt >= gteCreated) &&
      (lteCreated === undefined || c.createdAt <= lteCreated) &&
      (gteConnected === undefined || c.connectedAt >= gteConnected) &&
      (lteConnected === undefined || c.connectedAt <= lteConnected) &&
      (q._gte_mqueue_len === undefined || c.mqueueLen >= q._gte_mqueue_len) &&
      (q._lte_mqueue_len === undefined || c.mqueueLen <= q._lte_mqueue_len);
    const out: ClientSummary[] = [];
    for (const c of control.clients()) {
      if (out.length >= limit) break;
      if (keep(c)) out.push(c);
    }
    return out;
  };
  route('GET', '/clients', 'search_clients', 'Clients and their sessions, filtered', clientQuery, async (req) => searchClients(req.query as ClientQuery).map(clientJson));
  route('GET', '/clients/offlines', 'search_offlines', 'Offline sessions, filtered as /clients', clientQuery, async (req) => {
    return searchClients({ ...(req.query as ClientQuery), connected: false }).map(clientJson);
  });
  route('DELETE', '/clients/offlines', 'kick_offlines', 'End the offline sessions a /clients filter selects', clientQuery, async (req) => {
    let count = 0;
    for (const c of searchClients({ ...(req.query as ClientQuery), connected: false })) if (await control.kick(c.clientId)) count++;
    return { count };
  });
  const clientParam = params({ clientid: { type: 'string', minLength: 1 } });
  const known = (clientId: string): ClientSummary => {
    const c = control.client(clientId);
    if (c === undefined) throw new RmqttError('ERR_NOT_FOUND', `client "${clientId}" not found`);
    return c;
  };
  route('GET', '/clients/:clientid', 'get_client', 'One client', clientParam, async (req) => clientJson(known((req.params as { clientid: string }).clientid)));
  route('GET', '/clients/:clientid/online', 'check_online', 'Whether a client is connected', clientParam, async (req) => {
    return control.client((req.params as { clientid: string }).clientid)?.connected === true;
  });
  route('DELETE', '/clients/:clientid', 'kick_client', 'Disconnect a client and end its session', clientParam, async (req) => {
    const c = known((req.params as { clientid: string }).clientid);
    await control.kick(c.clientId);
    return clientIdJson(c);
  });

  // ---- subscriptions, routes ----

  route(
    'GET',
    '/subscriptions',
    'query_subscriptions',
    'Subscriptions, filtered',
    {
      querystring: {
        type: 'object',
        properties: { _limit: LIMIT, clientid: { type: 'string' }, topic: { type: 'string' }, qos: QOS, share: { type: 'string' }, _match_topic: { type: 'string' } },
      },
    },
    async (req) => {
      const q = req.query as { _limit?: number; clientid?: string; topic?: string; qos?: QoS; share?: string; _match_topic?: string };
      const limit = rowLimit(q._limit);
      const out: Record<string, unknown>[] = [];
      for (const s of control.subscriptions(q.clientid)) {
        if (out.length >= limit) break;
        if (q.topic !== undefined && s.topic !== q.topic) continue;
        if (q.qos !== undefined && s.qos !== q.qos) continue;
        if (q.share !== undefined && s.share !== q.share) continue;
        if (q._match_topic !== undefined && !topicMatches(bareFilter(s.topic), q._match_topic)) continue;
        out.push(subscriptionJson(s));
      }
      return out;
    },
  );
  route('GET', '/subscriptions/:clientid', 'get_client_subscriptions', 'Subscriptions of one client', clientParam, async (req) => {
    const id = known((req.params as { clientid: string }).clientid).clientId;
    return control.subscriptions(id).map(subscriptionJson);
  });
  route('GET', '/routes', 'get_routes', 'Topic filters with subscribers, per node', { querystring: { type: 'object', properties: { _limit: LIMIT } } }, async (req) => {
    const limit = rowLimit((req.query as { _limit?: number })._limit);
    return control
      .routes()
      .slice(0, limit)
      .map((r) => ({ topic: r.topic, node_id: r.node }));
  });
  route('GET', '/routes/:topic', 'get_route', 'Routes whose filter matches a topic name', params({ topic: { type: 'string', minLength: 1 } }), async (req) => {
    const topic = (req.params as { topic: string }).topic;
    return control
      .routes()
      .filter((r) => topicMatches(r.topic, topic))
      .map((r) => ({ topic: r.topic, node_id: r.node }));
  });

  // ---- retained messages ----

  route(
    'GET',
    '/retains',
    'get_retains',
    'Retained messages matching a filter',
    { querystring: { type: 'object', properties: { topic_filter: { type: 'string', minLength: 1 }, offset: LIMIT, limit: LIMIT } } },
    async (req) => {
      const q = req.query as { topic_filter?: string; offset?: number; limit?: number };
      const filter = q.topic_filter ?? '#';
      const all = await control.retained(filter);
      const offset = q.offset ?? 0;
      const limit = rowLimit(q.limit);
      const page = all.slice(offset, offset + limit);
      const now = Date.now();
      return {
        items: page.map((m) => ({
          topic: m.topic,
          msg_id: m.id,
          from: { type: m.from.type, node: m.from.node, clientid: m.from.clientId, username: m.from.username ?? null },
          publish: { topic: m.topic, qos: m.qos, retain: true, payload: m.payload.toString('base64'), create_time: m.createdAt },
          remaining_ttl: m.expiresAt === 0 ? null : Math.max(0, Math.ceil((m.expiresAt - now) / 1000)),
        })),
        has_more: offset + page.length < all.length,
      };
    },
  );
  route('DELETE', '/retains', 'delete_retain', 'Delete the retained message of one topic', { querystring: { type: 'object', properties: { topic: { type: 'string', minLength: 1 } }, required: ['topic'] } }, async (req, reply) => {
    const topic = (req.query as { topic: string }).topic;
    if (topic.includes('+') || topic.includes('#')) throw new RmqttError('ERR_BAD_REQUEST', `topic "${topic}" has wildcards`);
    if (!(await control.deleteRetained(topic))) throw new RmqttError('ERR_NOT_FOUND', `no retained message on "${topic}"`);
    return reply.type('text/plain; charset=utf-8').send('ok');
  });

  // ---- MQTT actions ----

  const topicsOf = (body: { topic?: string; topics?: string }): string[] => {
    const list = [...(body.topic !== undefined ? [body.topic] : []), ...(body.topics ?? '').split(',')].map((t) => t.trim()).filter((t) => t !== '');
    if (list.length === 0) throw new RmqttError('ERR_BAD_REQUEST', 'topic or topics is required');
    return list;
  };
  route(
    'POST',
    '/mqtt/publish',
    'publish',
    'Publish a message',
    {
      body: {
        type: 'object',
        required: ['payload'],
        properties: {
          topic: { type: 'string' },
          topics: { type: 'string' },
          clientid: { type: 'string', minLength: 1 },
          payload: { type: 'string' },
          encoding: { type: 'string', enum: ['plain', 'base64', 'PLAIN', 'BASE64', 'Plain', 'Base64'] },
          qos: QOS,
          retain: { type: 'boolean' },
          properties: {
            type: 'object',
            properties: {
              message_expiry_interval: { type: 'integer', minimum: 0, maximum: 4294967295 },
              payload_format_indicator: { type: 'integer', enum: [0, 1] },
              content_type: { type: 'string' },
              response_topic: { type: 'string', minLength: 1 },
              correlation_data: { type: 'string' },
              user_properties: { type: 'object', additionalProperties: { type: 'string' } },
            },
            additionalProperties: false,
          },
        },
      },
    },
    async (req, reply) => {
      const body = req.body as {
        topic?: string;
        topics?: string;
        clientid?: string;
        payload: string;
        encoding?: string;
        qos?: QoS;
        retain?: boolean;
        properties?: { message_expiry_interval?: number; payload_format_indicator?: number; content_type?: string; response_topic?: string; correlation_data?: string; user_properties?: Record<string, string> };
      };
      const topics = topicsOf(body);
      const base64 = body.encoding?.toLowerCase() === 'base64';
      if (base64 && !/^[A-Za-z0-9+/]*={0,2}$/.test(body.payload)) throw new RmqttError('ERR_BAD_REQUEST', 'payload is not valid base64');
      const payload = Buffer.from(body.payload, base64 ? 'base64' : 'utf8');
      const p = body.properties ?? {};
      const properties = {
        ...(p.message_expiry_interval !== undefined && p.message_expiry_interval > 0 ? { messageExpiryInterval: p.message_expiry_interval } : {}),
        ...(p.payload_format_indicator !== undefined ? { payloadFormatIndicator: p.payload_format_indicator } : {}),
        ...(p.content_type !== undefined ? { contentType: p.content_type } : {}),
        ...(p.response_topic !== undefined ? { responseTopic: p.response_topic } : {}),
        ...(p.correlation_data !== undefined ? { correlationData: Buffer.from(p.correlation_data) } : {}),
        ...(p.user_properties !== undefined ? { userProperties: Object.entries(p.user_properties) as [string, string][] } : {}),
      };
      const expirySeconds = Math.ceil(api.config().message_expiry_interval / 1000);
      for (const topic of topics) {
        await control.publish({ topic, payload, qos: body.qos ?? 0, retain: body.retain ?? false, properties, clientId: body.clientid, expirySeconds });
      }
      return reply.type('text/plain; charset=utf-8').send('ok');
    },
  );
  route(
    'POST',
    '/mqtt/subscribe',
    'subscribe',
    'Subscribe a connected client',
    { body: { type: 'object', required: ['clientid'], properties: { topic: { type: 'string' }, topics: { type: 'string' }, clientid: { type: 'string', minLength: 1 }, qos: QOS } } },
    async (req) => {
      const body = req.body as { topic?: string; topics?: string; clientid: string; qos?: QoS };
      const topics = topicsOf(body);
      const out: Record<string, boolean | string> = {};
      for (const t of topics) {
        try {
          const code = await control.subscribe(body.clientid, t, body.qos ?? 0);
          out[t] = code < 0x80;
        } catch (err) {
          if (isRmqttError(err) && (err.code === 'ERR_NOT_FOUND' || err.code === 'ERR_UNAVAILABLE')) throw err;
          out[t] = (err as Error).message;
        }
      }
      return out;
    },
  );
  route(
    'POST',
    '/mqtt/unsubscribe',
    'unsubscribe',
    'Unsubscribe a connected client',
    { body: { type: 'object', required: ['topic', 'clientid'], properties: { topic: { type: 'string', minLength: 1 }, clientid: { type: 'string', minLength: 1 } } } },
    async (req) => {
      const body = req.body as { topic: string; clientid: string };
      return control.unsubscribe(body.clientid, body.topic);
    },
  );

  // ---- plugins ----

  const pluginParams = params({ node: NODE, plugin: { type: 'string', minLength: 1 } });
  const knownPlugin = (req: FastifyRequest): string => {
    const { node, plugin } = req.params as { node: number; plugin: string };
    requireNode(node);
    const p = control.plugin(plugin);
    if (p === undefined) throw new RmqttError('ERR_PLUGIN_NOT_FOUND', `plugin "${plugin}" not found`);
    return p.name;
  };
  route('GET', '/plugins', 'all_plugins', 'Plugins of every node', {}, async () => [{ node: b.nodeId, plugins: control.plugins().map(pluginJson) }]);
  route('GET', '/plugins/:node', 'node_plugins', 'Plugins of one node', params({ node: NODE }), async (req) => {
    requireNode((req.params as { node: number }).node);
    return control.plugins().map(pluginJson);
  });
  route('GET', '/plugins/:node/:plugin', 'node_plugin_info', 'One plugin', pluginParams, async (req) => pluginJson(control.plugin(knownPlugin(req))!));
  route('GET', '/plugins/:node/:plugin/config', 'node_plugin_config', 'The config of a plugin (secrets masked)', pluginParams, async (req) => control.pluginConfig(knownPlugin(req)));
  route('PUT', '/plugins/:node/:plugin/config/reload', 'node_plugin_config_reload', 'Re-read, check and apply the config file of a plugin', pluginParams, async (req) => {
    await control.reloadPlugin(knownPlugin(req));
    return true;
  });
  route('PUT', '/plugins/:node/:plugin/load', 'node_plugin_load', 'Start a plugin (loading its package if needed)', pluginParams, async (req) => {
    const { node, plugin } = req.params as { node: number; plugin: string };
    requireNode(node);
    // a package not started at boot is looked up by name or path here
    await control.startPlugin(plugin);
    return true;
  });
  route('PUT', '/plugins/:node/:plugin/unload', 'node_plugin_unload', 'Stop a plugin', pluginParams, async (req) => {
    const name = knownPlugin(req);
    if (!(await control.stopPlugin(name))) throw new RmqttError('ERR_PLUGIN_REFUSED', `plugin "${name}" refused to stop`);
    return true;
  });

  // ---- stats and metrics ----

  const nodeRef = (): Record<string, unknown> => ({ id: b.nodeId, name: `${b.nodeId}@127.0.0.1`, running: true });
  route('GET', '/stats', 'get_stats', 'Gauges of every node', {}, async () => [{ node: nodeRef(), stats: b.metrics.stats() }]);
  route('GET', '/stats/sum', 'get_stats_sum', 'Gauges summed over the nodes', {}, async () => ({ nodes: { [String(b.nodeId)]: { name: `${b.nodeId}@127.0.0.1`, running: true } }, stats: b.metrics.stats() }));
  route('GET', '/stats/:id', 'get_node_stats', 'Gauges of one node', params({ id: NODE }), async (req) => {
    requireNode((req.params as { id: number }).id);
    return { node: nodeRef(), stats: b.metrics.stats() };
  });
  route('GET', '/metrics', 'get_metrics', 'Counters of every node', {}, async () => [{ node: { id: b.nodeId, name: `${b.nodeId}@127.0.0.1` }, metrics: b.metrics.metrics() }]);
  route('GET', '/metrics/sum', 'get_metrics_sum', 'Counters summed over the nodes', {}, async () => b.metrics.metrics());
  route('GET', '/metrics/prometheus', 'get_prometheus_metrics', 'Counters, gauges and node status in the Prometheus text format', {}, async (req, reply) => {
    return reply.type(prometheus.contentType).send(await prometheus.text('all'));
  });
  route('GET', '/metrics/prometheus/sum', 'get_prometheus_metrics_sum', 'As /metrics/prometheus, the sum only', {}, async (req, reply) => {
    return reply.type(prometheus.contentType).send(await prometheus.text('sum'));
  });
  route('GET', '/metrics/prometheus/:id', 'get_node_prometheus_metrics', 'As /metrics/prometheus, one node', params({ id: NODE }), async (req, reply) => {
    requireNode((req.params as { id: number }).id);
    return reply.type(prometheus.contentType).send(await prometheus.text('node'));
  });
  route('GET', '/metrics/:id', 'get_node_metrics', 'Counters of one node', params({ id: NODE }), async (req) => {
    requireNode((req.params as { id: number }).id);
    return { node: { id: b.nodeId, name: `${b.nodeId}@127.0.0.1` }, metrics: b.metrics.metrics() };
  });

  return app;
}

/** `$share/g/a/+` → `a/+`; `$exclusive/a` → `a`; `$limit/3/a` → `a`. */
function bareFilter(filter: string): string {
  if (filter.startsWith('$share/')) return filter.split('/').slice(2).join('/');
  if (filter.startsWith('$exclusive/')) return filter.slice('$exclusive/'.length);
  if (filter.startsWith('$limit/')) return filter.split('/').slice(2).join('/');
  return filter;
}
