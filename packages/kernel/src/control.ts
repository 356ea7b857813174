/**
 * The kernel control API: what the HTTP API plugin (and any administrator) can see and do — clients,
 * sessions, subscriptions, routes, publishing, subscribing on a client's behalf, retained messages and
 * plugins.
 */
import {
  ReasonCode,
  RmqttError,
  isValidTopicFilter,
  isValidTopicName,
  type AdminPublish,
  type ClientSummary,
  type ControlApi,
  type Message,
  type PluginSummary,
  type QoS,
  type SubscriptionSummary,
} from '@rmqtt-ts/plugin-api';
import type { Kernel } from './kernel.js';
import type { PluginManager } from './plugins/manager.js';
import type { Session } from './session/session.js';
import { processSubscription, removeSubscription } from './session/subscriptions.js';

export class KernelControl implements ControlApi {
  readonly #k: Kernel;
  readonly #plugins: PluginManager;

  constructor(kernel: Kernel, plugins: PluginManager) {
    this.#k = kernel;
    this.#plugins = plugins;
  }

  #summary(s: Session): ClientSummary {
    const info = s.connectInfo;
    const conn = s.conn;
    const will = info.will;
    return {
      node: this.#k.nodeId,
      clientId: s.clientId,
      username: info.username,
      superuser: s.superuser,
      protoVer: info.protoVer,
      ipAddress: info.remoteAddr.ip,
      port: info.remoteAddr.port,
      listener: info.listener,
      connected: conn !== null,
      connectedAt: s.connectedAt,
      disconnectedAt: s.disconnectedAt,
      disconnectedReason: s.disconnectReason,
      createdAt: s.createdAt,
      keepalive: info.keepalive,
      cleanStart: info.cleanStart,
      sessionPresent: s.sessionPresent,
      expiryInterval: s.expiryInterval,
      subscriptionsCount: s.subscriptions.size,
      subscriptionsMax: s.listener.maxSubscriptions,
      inflight: s.out.inflight.size,
      inflightMax: s.out.window,
      mqueueLen: s.out.queue.length,
      mqueueMax: s.listener.maxMqueueLen,
      lastWill: will === undefined ? undefined : { topic: will.topic, qos: will.qos, retain: will.retain, payload: will.payload },
      attributes: Object.fromEntries(s.attributes),
    };
  }

  clients(): ClientSummary[] {
    const out: ClientSummary[] = [];
    for (const s of this.#k.sessions.values()) out.push(this.#summary(s));
    return out;
  }

  client(clientId: string): ClientSummary | undefined {
    const s = this.#k.sessions.get(clientId);
    return s === undefined ? undefined : this.#summary(s);
  }

  kick(clientId: string): boolean {
    return this.#k.sessions.kick(clientId, ReasonCode.AdministrativeAction, 'kicked by administrator') !== undefined;
  }

  subscriptions(clientId?: string): SubscriptionSummary[] {
    const out: SubscriptionSummary[] = [];
    const one = clientId !== undefined ? this.#k.sessions.get(clientId) : undefined;
    const sessions = clientId !== undefined ? (one ? [one] : []) : this.#k.sessions.values();
    for (const s of sessions) {
      for (const sub of s.subscriptions.values()) {
        out.push({
          node: this.#k.nodeId,
          clientId: s.clientId,
          clientAddr: s.conn ? `${s.connectInfo.remoteAddr.ip}:${s.connectInfo.remoteAddr.port}` : undefined,
          topic: sub.rawFilter,
          qos: sub.options.qos,
          share: sub.options.shareGroup,
        });
      }
    }
    return out;
  }

  routes(): { topic: string; node: number; count: number }[] {
    const out: { topic: string; node: number; count: number }[] = [];
    for (const r of this.#k.ext.router.routes()) out.push({ topic: r.filter, node: this.#k.nodeId, count: r.count });
    return out;
  }

  async publish(input: AdminPublish): Promise<void> {
    if (!isValidTopicName(input.topic)) throw new RmqttError('ERR_BAD_REQUEST', `invalid topic "${input.topic}"`);
    const qos = input.qos ?? 0;
    if (qos !== 0 && qos !== 1 && qos !== 2) throw new RmqttError('ERR_BAD_REQUEST', `invalid qos ${String(qos)}`);
    const s = input.clientId !== undefined ? this.#k.sessions.get(input.clientId) : undefined;
    // with a client id, that client's publish ACL applies; unknown ids publish as system without one
    const r = await this.#k.publisher.publishAdmin(input, s?.info, s === undefined ? input.clientId === undefined : s.superuser);
    if (!r.allowed) throw new RmqttError('ERR_NOT_AUTHORIZED', `publish to "${input.topic}" not authorized`);
  }

  async subscribe(clientId: string, filter: string, qos: QoS): Promise<number> {
    const s = this.#online(clientId);
    if (!isValidTopicFilter(filter) && !filter.startsWith('$share/')) throw new RmqttError('ERR_BAD_REQUEST', `invalid topic filter "${filter}"`);
    const o = await processSubscription(this.#k, s, {
      filter,
      options: { qos, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: undefined, shareGroup: undefined, limit: undefined },
    });
    if (o.sendRetained !== undefined) await this.#k.publisher.sendRetained(s, o.sendRetained);
    return o.code;
  }

  async unsubscribe(clientId: string, filter: string): Promise<boolean> {
    const s = this.#online(clientId);
    return removeSubscription(this.#k, s, filter);
  }

  #online(clientId: string): Session {
    const s = this.#k.sessions.get(clientId);
    if (s === undefined) throw new RmqttError('ERR_NOT_FOUND', `client "${clientId}" not found`);
    if (s.conn === null) throw new RmqttError('ERR_UNAVAILABLE', `client "${clientId}" is offline`);
    return s;
  }

  async retained(filter: string): Promise<Message[]> {
    const store = this.#k.ext.retainStore;
    if (store === null) return [];
    return store.match(filter);
  }

  async deleteRetained(topic: string): Promise<boolean> {
    const store = this.#k.ext.retainStore;
    if (store === null) return false;
    return store.delete(topic);
  }

  plugins(): PluginSummary[] {
    return this.#plugins.summaries();
  }

  plugin(name: string): PluginSummary | undefined {
    return this.#plugins.summary(name);
  }

  startPlugin(name: string): Promise<void> {
    return this.#plugins.start(name);
  }

  stopPlugin(name: string): Promise<boolean> {
    return this.#plugins.stop(name);
  }

  reloadPlugin(name: string): Promise<void> {
    return this.#plugins.reload(name);
  }

  pluginConfig(name: string): Record<string, unknown> {
    return this.#plugins.config(name);
  }
}
