/** The kernel's own in-memory stores against the conformance suites they are the reference for. */
import { MemorySessionStore } from '@rmqtt-ts/kernel';
import { describeSessionStore } from './session-store.js';

describeSessionStore('kernel memory', async () => {
  const store = new MemorySessionStore();
  return { store, reopen: async () => store };
});
