#!/usr/bin/env node
import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    // let buffered log lines reach their destination
    setImmediate(() => process.exit(code));
  },
  (err: unknown) => {
    process.stderr.write(`rmqtt-ts: ${String(err)}\n`);
    process.exit(1);
  },
);
