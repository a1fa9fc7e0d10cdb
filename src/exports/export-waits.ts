import { listenToChannel, type ChannelListener } from '../db/listener';
import type { Logger } from '../logger';

/** The channel the database NOTIFYs with an export's id when it becomes complete or failed (drizzle/0017). */
export const EXPORT_FINISHED_CHANNEL = 'analytics_export_finished';
export const WAIT_LISTENER_APPLICATION_NAME = 'analytics-export-wait-listener';

/**
 * Requests waiting for exports to finish (GET /analytics/exports/{id}/?wait=N), registered in
 * one place per process and woken by one LISTEN connection, however many there are. The
 * connection is opened when the first request starts waiting and closed when the last one is
 * done. A waiter reads its export only while the LISTEN is in place, so a NOTIFY cannot slip in
 * between its read and its wait; when the connection comes back after a drop, every waiter reads
 * again (a NOTIFY sent meanwhile is lost). A waiter never outlives its deadline, listener or not.
 */
export class ExportWaits {
  private readonly waiters = new Map<string, Set<() => void>>();
  private count = 0;
  private listener: ChannelListener | undefined;
  private stopping = false;

  constructor(private readonly options: { connectionString: string; logger: Logger }) {}

  /**
   * Reads the export with `read` until `isFinished` says so and returns that read; undefined
   * when the deadline passes, the request goes away (`signal`) or the process stops first (the
   * caller then reads the export as it is).
   */
  async wait<T>(
    exportId: string,
    timeoutMs: number,
    signal: AbortSignal,
    read: () => Promise<T>,
    isFinished: (value: T) => boolean,
  ): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs;
    // Set by a wake that comes while the export is being read: read again rather than sleep on it.
    let woken = false;
    let wake = () => {};
    const waker = () => {
      woken = true;
      wake();
    };
    this.add(exportId, waker);
    try {
      for (;;) {
        woken = false;
        if (this.listener?.listening()) {
          const value = await read();
          if (isFinished(value)) return value;
        }
        const left = deadline - Date.now();
        if (left <= 0 || signal.aborted || this.stopping) return undefined;
        if (!woken) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, left);
            signal.addEventListener('abort', done, { once: true });
            wake = done;
            function done() {
              clearTimeout(timer);
              signal.removeEventListener('abort', done);
              wake = () => {};
              resolve();
            }
          });
        }
        if (Date.now() >= deadline || signal.aborted || this.stopping) return undefined;
      }
    } finally {
      this.remove(exportId, waker);
    }
  }

  /** Answers every waiting request now (with the state it has) and closes the connection: the process is stopping. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeAll();
    await this.listener?.stop();
    this.listener = undefined;
  }

  private add(exportId: string, waker: () => void): void {
    let set = this.waiters.get(exportId);
    if (!set) {
      set = new Set();
      this.waiters.set(exportId, set);
    }
    set.add(waker);
    if (this.count++ === 0 && !this.stopping) {
      this.listener = listenToChannel({
        connectionString: this.options.connectionString,
        channel: EXPORT_FINISHED_CHANNEL,
        applicationName: WAIT_LISTENER_APPLICATION_NAME,
        logger: this.options.logger,
        onNotification: (id) => {
          for (const w of this.waiters.get(id) ?? []) w();
        },
        onListening: () => this.wakeAll(),
      });
    }
  }

  private remove(exportId: string, waker: () => void): void {
    const set = this.waiters.get(exportId);
    set?.delete(waker);
    if (set?.size === 0) this.waiters.delete(exportId);
    if (--this.count === 0) {
      const listener = this.listener;
      this.listener = undefined;
      void listener?.stop();
    }
  }

  private wakeAll(): void {
    for (const set of this.waiters.values()) for (const w of set) w();
  }
}
