/**
 * @rmqtt-ts/plugin-acl — RMQTT's file ACL: who may connect, publish and subscribe, by rules read top-down
 * (the first rule that hits decides; no hit is a denial). Decides after authentication plugins of higher
 * priority (auth-http, 100) that pass a client on. A denied SUBSCRIBE gets 0x80 (3.x) / 0x87 (5); a
 * denied PUBLISH closes the connection when `disconnect_if_pub_rejected` (otherwise 0x87 on the v5
 * PUBACK/PUBREC). Rules are replaced by a config reload; the plugin may be stopped and started at run
 * time (stopped, every client is allowed everything, as without it).
 */
import { ReasonCode, definePlugin } from '@rmqtt-ts/plugin-api';
import { configSchema, type AclConfig } from './config.js';
import { AclRules, parseRules } from './rules.js';

export { configSchema, type AclConfig } from './config.js';
export { AclRules, parseRules, filtersOverlap } from './rules.js';

// answers that carry nothing per call are made once
const SUBSCRIBE_ALLOWED = Object.freeze({ result: Object.freeze({ allow: true }), proceed: false });
const SUBSCRIBE_DENIED = Object.freeze({ result: Object.freeze({ allow: false }), proceed: false });
const PUBLISH_ALLOWED = Object.freeze({ result: Object.freeze({ allow: true }), proceed: false });

export default definePlugin<AclConfig>({
  name: 'acl',
  apiVersion: '^1.0.0',
  description: 'File ACL: allow/deny rules for connect, publish and subscribe',
  configSchema,
  create(ctx) {
    let acl = new AclRules(parseRules(ctx.config.rules));
    let disconnect = ctx.config.disconnect_if_pub_rejected;
    const priority = ctx.config.priority;
    const stats = { connect_denied: 0, publish_denied: 0, subscribe_denied: 0 };

    return {
      init() {
        ctx.hooks.on(
          'client.authenticate',
          ({ connectInfo }, acc) => {
            // an earlier handler (auth-http) already decided: keep its answer
            if (acc !== undefined) return undefined;
            const d = acl.connect(connectInfo);
            if (d === undefined || d.permission === 'deny') {
              stats.connect_denied++;
              return { result: { result: 'deny', reasonCode: ReasonCode.NotAuthorized }, proceed: false };
            }
            return { result: { result: 'allow', superuser: d.superuser }, proceed: false };
          },
          { priority },
        );
        ctx.hooks.on(
          'client.subscribeCheckAcl',
          ({ client, filter }) => {
            const d = acl.subscribe(client, filter);
            if (d.permission === 'deny') {
              stats.subscribe_denied++;
              return SUBSCRIBE_DENIED;
            }
            return d.deliverIf === undefined ? SUBSCRIBE_ALLOWED : { result: { allow: true, deliverIf: d.deliverIf }, proceed: false };
          },
          { priority },
        );
        ctx.hooks.on(
          'message.publishCheckAcl',
          ({ client, message }) => {
            // a publish of the HTTP API without a client id is the system's own
            if (client === undefined) return undefined;
            if (acl.publish(client, message.topic) === 'allow') return PUBLISH_ALLOWED;
            stats.publish_denied++;
            return { result: { allow: false, disconnect }, proceed: false };
          },
          { priority },
        );
      },
      reload(config) {
        // parsed before anything changes: a bad rule leaves the running ones in force
        const next = new AclRules(parseRules(config.rules));
        acl = next;
        disconnect = config.disconnect_if_pub_rejected;
      },
      attrs() {
        return { rules: acl.rules.length, disconnect_if_pub_rejected: disconnect, ...stats };
      },
    };
  },
});
