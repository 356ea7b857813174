/**
 * The `rmqtt-ts` command: load the config, start the broker, stop cleanly on SIGINT/SIGTERM.
 */
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Broker, VERSION, loadBrokerConfig } from '@rmqtt-ts/kernel';
import { isRmqttError, type Logger } from '@rmqtt-ts/plugin-api';
import { HELP, parseArgs } from './args.js';
import { createLogger } from './logger.js';

/** How long a shutdown may take before the process exits anyway. */
const SHUTDOWN_MS = 10_000;

export async function main(argv: readonly string[]): Promise<number> {
  let args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`rmqtt-ts: ${(err as Error).message}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (args.version) {
    process.stdout.write(`rmqtt-ts ${VERSION}\n`);
    return 0;
  }
  const cwd = process.cwd();
  let loaded;
  try {
    loaded = await loadBrokerConfig({
      file: args.files,
      cwd,
      overrides: {
        nodeId: args.nodeId,
        defaultStartups: args.defaultStartups,
        nodeGrpcAddrs: args.nodeGrpcAddrs,
        raftPeerAddrs: args.raftPeerAddrs,
        raftLeaderId: args.raftLeaderId,
      },
    });
  } catch (err) {
    process.stderr.write(`rmqtt-ts: ${(err as Error).message}\n`);
    return 2;
  }
  const logger = createLogger(loaded.config.log, cwd) as unknown as Logger;
  logger.info({ version: VERSION, config: loaded.files.length > 0 ? loaded.files : '(defaults)', node: loaded.config.node.id }, 'rmqtt-ts starting');
  const broker = new Broker({
    config: loaded,
    logger,
    cwd,
    // plugins installed with this command resolve from its own node_modules
    searchPaths: [dirname(fileURLToPath(import.meta.url))],
  });
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));
  try {
    await broker.start();
  } catch (err) {
    logger.fatal({ err }, 'start-up failed');
    process.stderr.write(`rmqtt-ts: ${isRmqttError(err) ? err.message : String(err)}\n`);
    await broker.stop().catch(() => undefined);
    return 1;
  }
  logger.info('rmqtt-ts started');
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      const timer = setTimeout(() => {
        logger.error('shutdown took too long; exiting');
        resolve(1);
      }, SHUTDOWN_MS);
      timer.unref();
      broker.stop().then(
        () => {
          clearTimeout(timer);
          resolve(0);
        },
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
