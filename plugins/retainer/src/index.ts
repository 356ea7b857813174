/**
 * @rmqtt-ts/plugin-retainer — retained messages (the RetainStore extension point). Without it the
 * broker announces Retain Available 0. It refuses to stop: retained state would be lost.
 */
import { definePlugin, RmqttError } from '@rmqtt-ts/plugin-api';
import { configSchema, type RetainerConfig } from './config.js';
import { RamRetainStore } from './ram-store.js';

export { RamRetainStore, type RamStoreLimits } from './ram-store.js';
export { configSchema, type RetainerConfig } from './config.js';

function limitsOf(c: RetainerConfig) {
  return { maxMessages: c.max_retained_messages, maxPayloadSize: c.max_payload_size, ttl: c.retained_message_ttl };
}

export default definePlugin<RetainerConfig>({
  name: 'retainer',
  apiVersion: '^1.0.0',
  description: 'Retained messages (ram store)',
  configSchema,
  create(ctx) {
    let store: RamRetainStore | undefined;
    return {
      init() {
        const type = ctx.config.storage.type;
        if (type !== 'ram') {
          throw new RmqttError('ERR_CONFIG', `retainer: storage.type = "${type}" needs a durable backend that this build does not include; use "ram"`);
        }
        store = new RamRetainStore(limitsOf(ctx.config), ctx.broker.scheduler);
        ctx.extensions.provide('retainStore', store);
      },
      stop() {
        // retained messages live only in this store: stopping would lose them (RMQTT refuses too)
        return false;
      },
      reload(config) {
        if (config.storage.type !== ctx.config.storage.type) {
          throw new RmqttError('ERR_CONFIG', 'retainer: storage.type cannot change at run time');
        }
        if (store) store.limits = limitsOf(config);
      },
      attrs() {
        return { storage: ctx.config.storage.type, retained: store?.count() ?? 0 };
      },
      dispose() {
        store?.close();
      },
    };
  },
});
