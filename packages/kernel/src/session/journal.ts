/**
 * Changes to persistent sessions, batched per tick and written to the SessionStore in force. Only
 * persistent sessions (expiry > 0) produce changes; clean sessions cost nothing here.
 */
import type { Logger, SessionChange } from '@rmqtt-ts/plugin-api';
import type { ExtensionSlots } from '../extensions/slots.js';

export class SessionJournal {
  #batch: SessionChange[] = [];
  #scheduled = false;
  #writing: Promise<void> = Promise.resolve();
  readonly #ext: ExtensionSlots;
  readonly #logger: Logger;

  constructor(ext: ExtensionSlots, logger: Logger) {
    this.#ext = ext;
    this.#logger = logger;
  }

  record(change: SessionChange): void {
    this.#batch.push(change);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    const batch = this.#batch;
    if (batch.length === 0) return;
    this.#batch = [];
    const store = this.#ext.sessionStore;
    // batches reach the store in order: a batch starts only after the previous one was written
    this.#writing = this.#writing
      .then(() => store.apply(batch))
      .catch((err: unknown) => this.#logger.error({ err }, 'session store write failed'));
  };

  /** Resolves once everything recorded so far was handed to the store and written. */
  async flushed(): Promise<void> {
    this.#flush();
    await this.#writing;
  }
}
