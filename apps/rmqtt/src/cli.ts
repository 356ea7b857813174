#!/usr/bin/env -S node --min-semi-space-size=16
// A broker allocates many short-lived objects per message: a young generation sized for that from the
// start (16 MB semi-spaces, what V8 grows to under load anyway) avoids premature promotion and keeps
// memory flat instead of stepping up after the first minute.
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
