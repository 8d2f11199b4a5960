// A small typed event emitter (no dependency on node's EventEmitter, so the SDK runs in browsers as is).

export type Listener<T> = (value: T) => void;

export class Emitter<Events extends { [K in keyof Events]: unknown }> {
  private listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Calls `listener` for every `event`; returns a function that removes it. */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as Listener<never>);
    return () => this.off(event, listener);
  }

  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    this.listeners.get(event)?.delete(listener as Listener<never>);
  }

  /** The next `event` that passes `filter` (default: any). */
  next<K extends keyof Events>(event: K, filter: (value: Events[K]) => boolean = () => true): Promise<Events[K]> {
    return new Promise((resolve) => {
      const off = this.on(event, (v) => {
        if (filter(v)) {
          off();
          resolve(v);
        }
      });
    });
  }

  protected emit<K extends keyof Events>(event: K, value: Events[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const l of [...set]) {
      try {
        (l as Listener<Events[K]>)(value);
      } catch (e) {
        // A throwing listener must not break the stream for the others; report it asynchronously.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }
}
