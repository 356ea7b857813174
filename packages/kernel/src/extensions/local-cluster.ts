/**
 * The default ClusterTransport: a single node. Locks serialise connects of one client id within this
 * process; nothing is forwarded and no session lives elsewhere.
 */
import type { ClusterTransport, Message, SessionSnapshot } from '@rmqtt-ts/plugin-api';

export class LocalClusterTransport implements ClusterTransport {
  readonly #locks = new Map<string, Promise<void>>();

  forward(_message: Message): void {}

  locate(_clientId: string): undefined {
    return undefined;
  }

  lock(clientId: string): Promise<() => void> | (() => void) {
    const held = this.#locks.get(clientId);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = () => {
        // the last in line removes the entry
        if (this.#locks.get(clientId) === tail) this.#locks.delete(clientId);
        resolve();
      };
    });
    const tail = held ? held.then(() => mine) : mine;
    this.#locks.set(clientId, tail);
    if (!held) return release; // uncontended: no promise, the connect goes on synchronously
    return held.then(() => release);
  }

  takeover(_clientId: string, _fromNode: number): SessionSnapshot | undefined {
    return undefined;
  }

  register(_clientId: string): void {}
  unregister(_clientId: string): void {}
}
