/**
 * An attempt's progress while it runs, for its heartbeat and its log line: the data rows its files
 * hold so far and the bytes written to storage (compressed bytes, when the files are).
 */
export class ExportProgress {
  rows = 0;
  bytes = 0;
}
