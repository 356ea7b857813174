/**
 * @rmqtt-ts/plugin-auth-http — RMQTT's authentication and ACL over HTTP. `http_auth_req` decides who may
 * connect (every client, with or without a username); `http_acl_req` decides each subscribe and publish.
 * An answer is allow, deny or ignore (pass on to the next handler, the file ACL); a JSON answer may add
 * `superuser`, `expire_at` and a preset `acl` list, and an `X-Cache: <ms>` header lets a publish answer be
 * reused. A server that fails is retried with backoff; after that `deny_if_error` decides. Runs at
 * priority 100, before the file ACL (10).
 */
import {
  ReasonCode,
  definePlugin,
  topicMatches,
  type ClientInfo,
  type ConnectInfo,
  type HookDecision,
  type PublishAclResult,
  type SubscribeAclResult,
} from '@rmqtt-ts/plugin-api';
import { configSchema, type AuthHttpConfig } from './config.js';
import { ask, type Answer, type PresetAcl, type RequestOptions } from './http.js';

export { configSchema, type AuthHttpConfig } from './config.js';
export { ask, fill, readAnswer, type Answer } from './http.js';

/** What one client's authentication left for its ACL checks. */
interface ClientState {
  expireAt: number | undefined;
  acl: PresetAcl[] | undefined;
  /** Cached publish answers by topic: verdict and until when (Infinity = this connection). */
  cache: Map<string, { verdict: 'allow' | 'deny' | 'ignore'; until: number }> | undefined;
}

const SUB_ALLOW: HookDecision<SubscribeAclResult> = Object.freeze({ result: Object.freeze({ allow: true }), proceed: false });
const SUB_DENY: HookDecision<SubscribeAclResult> = Object.freeze({ result: Object.freeze({ allow: false }), proceed: false });
const PUB_ALLOW: HookDecision<PublishAclResult> = Object.freeze({ result: Object.freeze({ allow: true }), proceed: false });

/** Cached publish answers per client before the cache starts over. */
const CACHE_SIZE = 1024;

const ACCESS_SUBSCRIBE = '1';
const ACCESS_PUBLISH = '2';

function placeholders(ci: ConnectInfo): Record<string, string> {
  return {
    u: ci.username ?? '',
    c: ci.clientId,
    a: ci.remoteAddr.ip,
    p: String(ci.remoteAddr.port),
    r: String(ci.protoVer),
    P: ci.password?.toString('utf8') ?? '',
  };
}

/** A preset ACL topic: `${username}` / `${clientid}` filled; "eq t" is the exact topic t. */
function presetHits(p: PresetAcl, ci: ConnectInfo, topic: string, action: 'publish' | 'subscribe', qos: number, retain: boolean): boolean {
  if (p.action !== 'all' && p.action !== action) return false;
  if (p.qos !== undefined && !p.qos.includes(qos)) return false;
  if (action === 'publish' && p.retain !== undefined && p.retain !== retain) return false;
  const filled = p.topic.replaceAll('${username}', ci.username ?? '').replaceAll('${clientid}', ci.clientId);
  if (filled.startsWith('eq ')) return filled.slice(3) === topic;
  return topicMatches(filled, topic) || filled === topic;
}

export default definePlugin<AuthHttpConfig>({
  name: 'auth-http',
  apiVersion: '^1.0.0',
  description: 'Authentication and ACL by HTTP requests',
  configSchema,
  create(ctx) {
    // keyed by the CONNECT's own ConnectInfo (kept by the session): a client that reconnects or is taken
    // over gets the state of its new authentication, and a refused or ended one leaves nothing behind
    let clients = new WeakMap<ConnectInfo, ClientState>();
    let stopping = new AbortController();
    const stats = { auth_allow: 0, auth_deny: 0, auth_ignore: 0, acl_allow: 0, acl_deny: 0, acl_ignore: 0, acl_cached: 0, errors: 0 };
    const priority = ctx.config.priority;

    const options = (): RequestOptions => {
      const c = ctx.config;
      return { timeoutMs: c.http_timeout, headers: c.http_headers, retry: c.http_retry, denyIfError: c.deny_if_error, signal: stopping.signal };
    };
    const noteError = (a: Answer, what: string, clientId: string): void => {
      if (a.error === undefined) return;
      stats.errors++;
      ctx.logger.warn({ clientId, error: a.error, verdict: a.verdict }, `${what} request failed`);
    };
    const expired = (s: ClientState | undefined): boolean => s?.expireAt !== undefined && Date.now() >= s.expireAt;

    /**
     * An answer known without a request — the preset list, or a cached publish answer — or undefined.
     * Kept synchronous: a publish answered from the cache costs no promise.
     */
    function knownVerdict(client: ClientInfo, topic: string, action: 'publish' | 'subscribe', qos: number, retain: boolean): 'allow' | 'deny' | 'ignore' | undefined {
      const ci = client.connectInfo;
      const state = clients.get(ci);
      if (state === undefined) return ctx.config.http_acl_req === null ? 'ignore' : undefined;
      if (state.acl !== undefined) for (const p of state.acl) if (presetHits(p, ci, topic, action, qos, retain)) return p.permission;
      if (ctx.config.http_acl_req === null) return 'ignore';
      if (action === 'publish' && state.cache !== undefined) {
        const hit = state.cache.get(topic);
        // an answer for the connection's lifetime needs no clock
        if (hit !== undefined && (hit.until === Infinity || hit.until > Date.now())) {
          stats.acl_cached++;
          return hit.verdict;
        }
      }
      return undefined;
    }

    /** The HTTP ACL question for a publish or subscribe the preset list and the cache did not answer. */
    async function askAcl(client: ClientInfo, topic: string, action: 'publish' | 'subscribe'): Promise<'allow' | 'deny' | 'ignore'> {
      const ci = client.connectInfo;
      const state = clients.get(ci);
      const a = await ask(ctx.config.http_acl_req!, { ...placeholders(ci), A: action === 'subscribe' ? ACCESS_SUBSCRIBE : ACCESS_PUBLISH, t: topic }, options());
      noteError(a, 'ACL', client.clientId);
      // only publish answers are cached, and only for a client still known (not one that left meanwhile)
      if (action === 'publish' && a.cacheMs !== undefined && a.error === undefined && state !== undefined) {
        state.cache ??= new Map();
        // a client publishing to ever-new topics: the cache starts over rather than grow without end
        if (state.cache.size >= CACHE_SIZE) state.cache.clear();
        state.cache.set(topic, { verdict: a.verdict, until: a.cacheMs < 0 ? Infinity : Date.now() + a.cacheMs });
      }
      return a.verdict;
    }

    const subscribeDecision = (v: 'allow' | 'deny' | 'ignore'): HookDecision<SubscribeAclResult> | undefined => {
      if (v === 'ignore') {
        stats.acl_ignore++;
        return undefined;
      }
      if (v === 'deny') stats.acl_deny++;
      else stats.acl_allow++;
      return v === 'allow' ? SUB_ALLOW : SUB_DENY;
    };
    const publishDecision = (v: 'allow' | 'deny' | 'ignore'): HookDecision<PublishAclResult> | undefined => {
      if (v === 'ignore') {
        stats.acl_ignore++;
        return undefined;
      }
      if (v === 'allow') {
        stats.acl_allow++;
        return PUB_ALLOW;
      }
      stats.acl_deny++;
      return { result: { allow: false, disconnect: ctx.config.disconnect_if_pub_rejected }, proceed: false };
    };

    return {
      init() {
        ctx.hooks.on(
          'client.authenticate',
          async ({ connectInfo }) => {
            const req = ctx.config.http_auth_req;
            if (req === null) return undefined;
            const a = await ask(req, placeholders(connectInfo), options());
            noteError(a, 'authentication', connectInfo.clientId);
            if (a.verdict === 'ignore') {
              stats.auth_ignore++;
              return undefined;
            }
            if (a.verdict === 'deny' || (a.expireAt !== undefined && a.expireAt <= Date.now())) {
              stats.auth_deny++;
              return { result: { result: 'deny', reasonCode: ReasonCode.BadUserNameOrPassword }, proceed: false };
            }
            stats.auth_allow++;
            clients.set(connectInfo, { expireAt: a.expireAt, acl: a.acl, cache: undefined });
            return { result: { result: 'allow', superuser: a.superuser }, proceed: false };
          },
          { priority },
        );
        ctx.hooks.on(
          'client.subscribeCheckAcl',
          ({ client, filter, options: subOptions }) => {
            const known = knownVerdict(client, filter, 'subscribe', subOptions.qos, false);
            if (known !== undefined) return subscribeDecision(known);
            return askAcl(client, filter, 'subscribe').then(subscribeDecision);
          },
          { priority },
        );
        ctx.hooks.on(
          'message.publishCheckAcl',
          ({ client, message }) => {
            if (client === undefined) return undefined;
            if (ctx.config.disconnect_if_expiry && expired(clients.get(client.connectInfo))) {
              stats.acl_deny++;
              return { result: { allow: false, disconnect: true }, proceed: false };
            }
            const known = knownVerdict(client, message.topic, 'publish', message.qos, message.retain);
            if (known !== undefined) return publishDecision(known);
            return askAcl(client, message.topic, 'publish').then(publishDecision);
          },
          { priority },
        );
        ctx.hooks.on('client.keepalive', ({ client }) => {
          if (ctx.config.disconnect_if_expiry && expired(clients.get(client.connectInfo))) {
            ctx.logger.info({ clientId: client.clientId }, 'authentication expired: disconnecting');
            void ctx.broker.control.kick(client.clientId);
          }
        });
      },
      start() {
        stopping = new AbortController();
      },
      stop() {
        // requests waiting for a retry give up; their clients get deny_if_error's answer
        stopping.abort();
        clients = new WeakMap();
      },
      attrs() {
        return { ...stats, auth: ctx.config.http_auth_req?.url ?? null, acl: ctx.config.http_acl_req?.url ?? null };
      },
      dispose() {
        stopping.abort();
      },
    };
  },
});
