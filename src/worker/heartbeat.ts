import type { Logger } from '../logger';
import { repeatEvery } from './repeat';
import type { StopReason } from './running-exports';

/**
 * While an export runs: about once a second, write its progress (rows and bytes so far) and the
 * heartbeat that keeps the rescuer away, and learn whether it should stop: a cancel requested
 * (in case the NOTIFY was missed), or the export no longer held by this attempt. When heartbeats
 * cannot be written for longer than the rescue limit, the export is given up ("lost") rather than
 * risk two attempts writing one object.
 */
export function startHeartbeat(options: {
  exportId: string;
  /** Writes the progress; undefined when the attempt no longer holds what it runs. */
  record: (progress: { rows: number; bytes: number }) => Promise<{ cancelRequested: boolean } | undefined>;
  intervalMs: number;
  timeoutMs: number;
  progress: () => { rows: number; bytes: number };
  stop: (reason: StopReason) => void;
  logger: Logger;
}): { stop(): Promise<void> } {
  const { exportId, logger } = options;
  let lastBeat = Date.now();
  const beat = async () => {
    try {
      const held = await options.record(options.progress());
      lastBeat = Date.now();
      if (held === undefined) options.stop('lost');
      else if (held.cancelRequested) options.stop('cancelled');
    } catch (error) {
      logger.warn({ err: error, export_id: exportId }, 'could not write the export heartbeat');
      if (Date.now() - lastBeat > options.timeoutMs) options.stop('lost');
    }
  };
  return repeatEvery(options.intervalMs, beat);
}
