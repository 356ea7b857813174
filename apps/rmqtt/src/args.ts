/**
 * Command-line flags, RMQTT's: `-f config`, `--id`, `--plugins-default-startups a b …`, the cluster
 * flags, `-V/--version`, `-h/--help`. A list flag takes every following word up to the next flag.
 */
import { RmqttError } from '@rmqtt-ts/plugin-api';

export interface CliArgs {
  /** -f, in order (a later file's keys win). */
  files: string[];
  nodeId?: number;
  defaultStartups?: string[];
  nodeGrpcAddrs?: string[];
  raftPeerAddrs?: string[];
  raftLeaderId?: number;
  version: boolean;
  help: boolean;
}

export const HELP = `Usage: rmqtt-ts [options]

An MQTT broker (MQTT 3.1, 3.1.1 and 5.0) with RMQTT's configuration, plugins and HTTP API.

Options:
  -f, --config <file>                  config file (TOML), e.g. configs/rmqtt.toml; may be given
                                       again: later files override earlier ones
      --id <n>                         node id (overrides node.id when > 0)
      --plugins-default-startups <p…>  plugins to start (replaces plugins.default_startups)
      --node-grpc-addrs <id@host:port…>  cluster: node addresses
      --raft-peer-addrs <id@host:port…>  cluster: consensus peer addresses
      --raft-leader-id <n>             cluster: initial leader
  -V, --version                        print the version and exit
  -h, --help                           print this help and exit

Environment: RMQTT_<KEY> overrides a config key, "__" between levels
(RMQTT_LISTENER__TCP__EXTERNAL__ADDR="0.0.0.0:1883"). Precedence: defaults < file < environment < flags.
`;

function bad(message: string): never {
  throw new RmqttError('ERR_CONFIG', `command-line flag ${message}`);
}

function int(flag: string, v: string | undefined): number {
  if (v === undefined || !/^\d+$/.test(v)) bad(`${flag}: expected a non-negative integer, got ${v === undefined ? 'nothing' : JSON.stringify(v)}`);
  return Number(v);
}

export function parseArgs(argv: readonly string[]): CliArgs {
  const out: CliArgs = { files: [], version: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const inline = eq > 0 ? a.slice(eq + 1) : undefined;
    const value = (): string | undefined => inline ?? argv[++i];
    const list = (): string[] => {
      if (inline !== undefined) return inline.split(/[\s,]+/).filter(Boolean);
      const items: string[] = [];
      while (i + 1 < argv.length && !argv[i + 1]!.startsWith('-')) items.push(argv[++i]!);
      return items;
    };
    switch (flag) {
      case '-f':
      case '--config': {
        const v = value();
        if (v === undefined) bad(`${flag}: expected a file path`);
        out.files.push(v);
        break;
      }
      case '--id':
        out.nodeId = int(flag, value());
        break;
      case '--plugins-default-startups':
        out.defaultStartups = list();
        break;
      case '--node-grpc-addrs':
        out.nodeGrpcAddrs = list();
        break;
      case '--raft-peer-addrs':
        out.raftPeerAddrs = list();
        break;
      case '--raft-leader-id':
        out.raftLeaderId = int(flag, value());
        break;
      case '-V':
      case '--version':
        out.version = true;
        break;
      case '-h':
      case '--help':
        out.help = true;
        break;
      default:
        bad(`${a}: unknown option (see --help)`);
    }
  }
  return out;
}
