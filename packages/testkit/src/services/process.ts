/** A server process a test starts and stops by its process id, on ports it waits for. */
import { spawn, type ChildProcess } from 'node:child_process';
import { waitForPort } from './net.js';

export class ServerProcess {
  #child: ChildProcess | undefined;

  constructor(
    /** For error messages: "redis", "mosquitto". */
    readonly what: string,
    readonly command: string,
    readonly args: () => readonly string[],
    /** Ports that accept connections once it is up. */
    readonly ports: readonly number[],
  ) {}

  /** The process id (undefined while stopped). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async start(): Promise<void> {
    if (this.#child !== undefined) return;
    const child = spawn(this.command, [...this.args()], { stdio: 'ignore' });
    this.#child = child;
    let failed: Error | undefined;
    child.once('error', (err) => {
      // no 'exit' need follow an 'error': forget the child here
      failed = new Error(`${this.what} (${this.command}) could not be started: ${err.message}`);
      if (this.#child === child) this.#child = undefined;
    });
    child.once('exit', () => {
      if (this.#child === child) this.#child = undefined;
    });
    try {
      for (const port of this.ports) await waitForPort(port, 10_000, this.what);
    } catch (err) {
      await this.stop('SIGKILL');
      throw failed ?? err;
    }
  }

  async stop(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    this.#child = undefined;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    await exited;
  }
}
