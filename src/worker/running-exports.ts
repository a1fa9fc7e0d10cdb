/**
 * The exports this worker process is running right now, so that a cancel NOTIFY, a lost
 * heartbeat or a shutdown can stop the right one.
 */

/** Why a running export was stopped before it finished. */
export type StopReason =
  | 'cancelled' // cancel_export() was called
  | 'shutdown' // the process is stopping and the grace period is over
  | 'lost'; // the export is no longer held by this attempt (rescued after a missed heartbeat)

export class ExportStopped extends Error {
  override name = 'ExportStopped';
  constructor(readonly reason: StopReason) {
    super(
      reason === 'cancelled'
        ? 'the export was cancelled while it ran'
        : reason === 'shutdown'
          ? 'the worker shut down before the export finished'
          : 'the worker lost its hold on the export',
    );
  }
}

export class RunningExports {
  readonly #stops = new Map<string, (reason: StopReason) => void>();

  /** Registers a running export; returns the function that unregisters it. */
  add(exportId: string, stop: (reason: StopReason) => void): () => void {
    this.#stops.set(exportId, stop);
    return () => {
      if (this.#stops.get(exportId) === stop) this.#stops.delete(exportId);
    };
  }

  /** Stops the export if this process runs it; true when it did. */
  stop(exportId: string, reason: StopReason): boolean {
    const stop = this.#stops.get(exportId);
    stop?.(reason);
    return stop !== undefined;
  }

  get size(): number {
    return this.#stops.size;
  }
}
