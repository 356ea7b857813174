/** Reading a TOML config file, with errors that name the file (and line and column for syntax). */
import { readFileSync } from 'node:fs';
import { RmqttError } from '@rmqtt-ts/plugin-api';
import { parse, TomlError } from 'smol-toml';

/**
 * Parses `absPath`; `label` is how messages name the file (the path as the user wrote it). Keys such as
 * `__proto__` are refused by the parser rather than kept.
 */
export function readTomlFile(absPath: string, label: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(absPath, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new RmqttError('ERR_CONFIG', `${label}: cannot read the config file: ${why}`, { cause: err });
  }
  try {
    return parse(text, { unsafeKeyBehaviour: 'throw' }) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      // smol-toml's message is "Invalid TOML document: <what>\n\n<code frame>"; keep the first line.
      const what = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document:\s*/, '');
      throw new RmqttError('ERR_CONFIG', `${label}: line ${err.line}, column ${err.column}: invalid TOML: ${what}`, { cause: err });
    }
    throw new RmqttError('ERR_CONFIG', `${label}: invalid TOML: ${(err as Error).message}`, { cause: err });
  }
}
