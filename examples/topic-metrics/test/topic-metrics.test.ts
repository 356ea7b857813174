/**
 * The example plugin as its author would test it: with the test kit's in-process broker and real MQTT
 * clients, then loaded at run time over the HTTP API by its path and started and stopped there while
 * the broker runs.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from 'mqtt';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import httpApi from '@rmqtt-ts/plugin-http-api';
import { recorder, subscribe, uniqueId, useTestScope, type TestBroker } from '@rmqtt-ts/testkit';
import topicMetrics from '../src/index.js';

/** The node id the expectations below name (the shipped config's; the built-in default is 0). */
const NODE_1 = { 'node.id': 1 };
const PACKAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const REPO_ROOT = join(PACKAGE_DIR, '..', '..');

const scope = useTestScope();

function client(b: TestBroker): Promise<MqttClient> {
  return scope.client(b.url(), { protocolVersion: 5 });
}

function counts(b: TestBroker): Record<string, number> {
  return (b.broker.control.plugin('topic-metrics')?.attrs as { counts: Record<string, number> }).counts;
}

describe('topic-metrics with the test kit', () => {
  it('counts messages under each filter and passes every message on', async () => {
    const b = await scope.broker({ config: NODE_1, plugins: [topicMetrics], files: { 'rmqtt-topic-metrics.toml': 'filters = ["sensors/#", "sensors/+/temp"]\n' } });
    const sub = await client(b);
    const rec = recorder(sub);
    await subscribe(sub, '#');
    const pub = await client(b);
    await pub.publishAsync('sensors/a/temp', '21', { qos: 1 });
    await pub.publishAsync('sensors/a/hum', '40', { qos: 1 });
    await pub.publishAsync('other/x', 'x', { qos: 1 });
    await rec.waitFor(3);
    expect(counts(b)).toEqual({ 'sensors/#': 2, 'sensors/+/temp': 1 });
    expect(b.broker.metrics.get('topic_metrics.sensors/#')).toBe(2);
  });

  it('a reload keeps the counts of the filters that stay', async () => {
    const dir = scope.dir('rmqtt-topic-metrics-');
    const b = await scope.broker({ config: NODE_1, plugins: [topicMetrics], pluginsDir: dir, files: { 'rmqtt-topic-metrics.toml': 'filters = ["a/#", "b/#"]\n' } });
    const pub = await client(b);
    await pub.publishAsync('a/1', 'x', { qos: 1 });
    await pub.publishAsync('b/1', 'x', { qos: 1 });
    writeFileSync(join(dir, 'rmqtt-topic-metrics.toml'), 'filters = ["a/#", "c/#"]\n');
    await b.broker.control.reloadPlugin('topic-metrics');
    expect(counts(b)).toEqual({ 'a/#': 1, 'c/#': 0 });
  });

  it('a filter that is not a topic filter stops the start, naming the file and the key', async () => {
    await expect(scope.broker({ config: NODE_1, plugins: [topicMetrics], files: { 'rmqtt-topic-metrics.toml': 'filters = ["a/#/b"]\n' } })).rejects.toThrow(/rmqtt-topic-metrics\.toml: filters/);
  });

  it('is found by its package name in node_modules', async () => {
    // the repository's test package depends on this example, as an application would
    const b = await scope.broker({ config: NODE_1, startups: ['rmqtt-ts-plugin-topic-metrics'], cwd: join(REPO_ROOT, 'test'), files: {} });
    expect(b.broker.control.plugin('topic-metrics')).toMatchObject({ active: true, packageName: 'rmqtt-ts-plugin-topic-metrics' });
  });
});

describe('topic-metrics over the HTTP API', () => {
  it('loaded by package name, stopped, and started again by path while clients keep exchanging messages', async () => {
    const b = await scope.broker({ config: NODE_1,
      plugins: [httpApi],
      // an application directory whose node_modules holds the package (not started at boot)
      cwd: join(REPO_ROOT, 'test'),
      files: { 'rmqtt-http-api.toml': 'http_laddr = "127.0.0.1:0"\n', 'rmqtt-topic-metrics.toml': 'filters = ["t/#"]\n' },
    });
    const base = `http://${(b.broker.control.plugin('http-api')!.attrs as { http_laddr: string }).http_laddr}/api/v1/plugins/1`;
    const put = async (path: string): Promise<{ status: number; body: unknown }> => {
      const r = await request(`${base}/${path}`, { method: 'PUT' });
      return { status: r.statusCode, body: await r.body.json() };
    };
    const sub = await client(b);
    const rec = recorder(sub);
    await subscribe(sub, 't/#', { qos: 1 });
    const pub = await client(b);
    const topic = `t/${uniqueId('x')}`;

    expect(b.broker.control.plugin('topic-metrics')).toBeUndefined();
    expect(await put('rmqtt-ts-plugin-topic-metrics/load')).toEqual({ status: 200, body: true });
    await pub.publishAsync(topic, '1', { qos: 1 });
    await rec.waitFor(1);
    expect(counts(b)).toEqual({ 't/#': 1 });

    expect(await put('topic-metrics/unload')).toEqual({ status: 200, body: true });
    await pub.publishAsync(topic, '2', { qos: 1 });
    await rec.waitFor(2);
    expect(counts(b)).toEqual({ 't/#': 1 });

    expect(await put(`${encodeURIComponent(PACKAGE_DIR)}/load`)).toEqual({ status: 200, body: true });
    await pub.publishAsync(topic, '3', { qos: 1 });
    await rec.waitFor(3);
    expect(counts(b)).toEqual({ 't/#': 2 });
    expect(rec.messages.map((m) => m.payload.toString())).toEqual(['1', '2', '3']);
    expect(sub.connected && pub.connected).toBe(true);
  });
});
