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

/** By export id: an export, or several slices of one export, may run in this process at once. */
export class RunningExports {
  readonly #stops = new Map<string, Set<(reason: StopReason) => void>>();

  /** Registers a running export (or slice of one); returns the function that unregisters it. */
  add(exportId: string, stop: (reason: StopReason) => void): () => void {
    let stops = this.#stops.get(exportId);
    if (!stops) {
      stops = new Set();
      this.#stops.set(exportId, stops);
    }
    stops.add(stop);
    return () => {
      stops.delete(stop);
      if (stops.size === 0 && this.#stops.get(exportId) === stops) this.#stops.delete(exportId);
    };
  }

  /** Stops what this process runs of the export; true when it ran any of it. */
  stop(exportId: string, reason: StopReason): boolean {
    const stops = this.#stops.get(exportId);
    for (const stop of stops ?? []) stop(reason);
    return stops !== undefined;
  }

  get size(): number {
    let size = 0;
    for (const stops of this.#stops.values()) size += stops.size;
    return size;
  }
}
