export { main } from './main.js';
export { parseArgs, HELP, type CliArgs } from './args.js';
export { createLogger } from './logger.js';
