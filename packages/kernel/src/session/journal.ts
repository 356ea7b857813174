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
    try {
      const r = store.apply(batch);
      if (r instanceof Promise) {
        // durable stores write in order: the next batch waits for this one
        this.#writing = this.#writing.then(() => r).catch((err: unknown) => this.#logger.error({ err }, 'session store write failed'));
      }
    } catch (err) {
      this.#logger.error({ err }, 'session store write failed');
    }
  };

  /** Resolves once everything recorded so far was handed to the store and written. */
  async flushed(): Promise<void> {
    this.#flush();
    await this.#writing;
  }
}
