/** pino logs as log.to says: console, file (log.dir/log.file), both, or off. */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { destination, multistream, pino, type Logger as Pino, type StreamEntry } from 'pino';
import type { BrokerConfig } from '@rmqtt-ts/kernel';

export function createLogger(log: BrokerConfig['log'], cwd: string): Pino {
  if (log.to === 'off') return pino({ level: 'silent' });
  const streams: StreamEntry[] = [];
  if (log.to === 'console' || log.to === 'both') streams.push({ level: log.level, stream: destination({ dest: 1, sync: false }) });
  if (log.to === 'file' || log.to === 'both') {
    const dir = resolve(cwd, log.dir);
    mkdirSync(dir, { recursive: true });
    streams.push({ level: log.level, stream: destination({ dest: join(dir, log.file), sync: false, mkdir: true }) });
  }
  return pino({ level: log.level }, multistream(streams));
}
