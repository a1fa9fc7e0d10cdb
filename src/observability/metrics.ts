import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Sql } from '../db/client';
import { EXPORT_ERROR_CODES, type ExportErrorCode } from '../db/schema';
import { countExportsByStatus, countSlicesByStatus, dueQueue, runningHeartbeats } from '../db/statements/exports';
import { countPendingWebhooks } from '../db/statements/export-webhooks';

/**
 * Prometheus metrics. Two kinds:
 * - the state of all exports (by status, queue depth, oldest waiting), read from the database at
 *   scrape time, so any process (API or worker) reports the same truth;
 * - what this process did (exports it finished, their duration, size, rows, bytes, the errors
 *   they met, and how long they waited in the queue; the attempts at slices of sliced exports
 *   beside them), recorded as it happens. A sliced export's end counts once among the export
 *   attempts, in the process whose job ended it (src/worker/sliced-export-end.ts).
 * Every name passes `promtool check metrics`: only counters end in `_total`.
 */

/** How an attempt ended, as the export task logs it (tasks/analytics-export.ts). */
export const EXPORT_OUTCOMES = ['complete', 'failed', 'cancelled', 'retry', 'requeued', 'lost'] as const;

export interface ExportOutcome {
  outcome: (typeof EXPORT_OUTCOMES)[number];
  durationSeconds: number;
  rows: number;
  bytes: number;
  /** From the export's run_at to this attempt's claim. */
  queuedSeconds: number;
  /** The code of the error the attempt ended with (failed, cancelled and retry outcomes). */
  errorCode?: ExportErrorCode | undefined;
  /** A sliced export's end: its rows and bytes were counted as its slices completed, not again. */
  sliced?: boolean;
}

/** How an attempt at one slice of a sliced export ended (src/worker/slice-job.ts): the same outcomes. */
export type SliceOutcome = Omit<ExportOutcome, 'queuedSeconds'>;

export interface Metrics {
  registry: Registry;
  recordExport(outcome: ExportOutcome): void;
  recordSlice(outcome: SliceOutcome): void;
  recordRequest(method: string, route: string, status: number, seconds: number): void;
  recordWebhookAttempt(outcome: (typeof WEBHOOK_OUTCOMES)[number]): void;
}

/** How a webhook delivery attempt ended: delivered (2xx), failed (another will be made), gave_up (the last). */
export const WEBHOOK_OUTCOMES = ['delivered', 'failed', 'gave_up'] as const;

const SIZE_BUCKETS = [1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

export function createMetrics(sql: Sql): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // prom-client's totals of these gauges end in `_total`, which Prometheus keeps for counters;
  // sum() over the by-type gauges of the same name without the suffix gives them.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }
  registerExportGauges(registry, sql);
  const exported = exportedCounters(registry);
  return {
    registry,
    recordExport: exportRecorder(registry, exported),
    recordSlice: sliceRecorder(registry, sql, exported),
    recordRequest: requestRecorder(registry),
    recordWebhookAttempt: webhookRecorder(registry, sql),
  };
}

/**
 * One read shared by the callers that come while it is under way. prom-client collects every
 * gauge of a scrape at once, so the gauges that show two figures of one query ask the database
 * once per scrape, and both figures come from the same snapshot.
 */
function sharedWhileReading<T>(read: () => Promise<T>): () => Promise<T> {
  let reading: Promise<T> | undefined;
  return () => {
    reading ??= read().finally(() => {
      reading = undefined;
    });
    return reading;
  };
}

/** The state of all exports, read from the database at scrape time. */
function registerExportGauges(registry: Registry, sql: Sql): void {
  new Gauge({
    name: 'analytics_exports',
    help: 'Exports in the database, by status',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const rows = await countExportsByStatus(sql);
      this.reset();
      for (const row of rows) this.set({ status: row.status }, row.n);
    },
  });
  const queue = sharedWhileReading(() => dueQueue(sql));
  new Gauge({
    name: 'analytics_export_queue_depth',
    help: 'Queued exports whose run_at has come (waiting for a worker)',
    registers: [registry],
    async collect() {
      this.set((await queue()).depth);
    },
  });
  new Gauge({
    name: 'analytics_export_oldest_queued_seconds',
    help: 'How long the longest-waiting due export has waited, in seconds (0 when none)',
    registers: [registry],
    async collect() {
      this.set((await queue()).oldestSeconds);
    },
  });
  const heartbeats = sharedWhileReading(() => runningHeartbeats(sql));
  new Gauge({
    name: 'analytics_export_heartbeat_age_seconds',
    help: 'Age of the oldest heartbeat among running exports, in seconds (0 when none runs)',
    registers: [registry],
    async collect() {
      this.set((await heartbeats()).oldestAgeSeconds);
    },
  });
  new Gauge({
    name: 'analytics_export_running_workers',
    help: 'Distinct workers holding a running export',
    registers: [registry],
    async collect() {
      this.set((await heartbeats()).workers);
    },
  });
}

/** Rows and bytes this process exported: by complete exports, and by complete slices of sliced exports. */
interface ExportedCounters {
  rows: Counter;
  bytes: Counter;
}

function exportedCounters(registry: Registry): ExportedCounters {
  return {
    rows: new Counter({ name: 'analytics_export_rows_total', help: 'Rows exported', registers: [registry] }),
    bytes: new Counter({ name: 'analytics_export_bytes_total', help: 'CSV bytes exported', registers: [registry] }),
  };
}

/** The names and help texts of one kind of attempt's counters and duration histogram. */
interface AttemptMetricNames {
  attempts: { name: string; help: string };
  errors: { name: string; help: string };
  duration: { name: string; help: string };
}

/**
 * Attempts this process ended, by outcome, with their durations and error codes. Every outcome
 * and error code is reported from the start (as 0), so that rate() and alerts see the series.
 */
function attemptRecorder(registry: Registry, names: AttemptMetricNames): (o: SliceOutcome) => void {
  const finished = new Counter({ ...names.attempts, labelNames: ['outcome'], registers: [registry] });
  const duration = new Histogram({ ...names.duration, labelNames: ['outcome'], buckets: DURATION_BUCKETS, registers: [registry] });
  const errors = new Counter({ ...names.errors, labelNames: ['code'], registers: [registry] });
  for (const outcome of EXPORT_OUTCOMES) finished.inc({ outcome }, 0);
  for (const code of EXPORT_ERROR_CODES) errors.inc({ code }, 0);
  return (o) => {
    finished.inc({ outcome: o.outcome });
    duration.observe({ outcome: o.outcome }, o.durationSeconds);
    if (o.errorCode !== undefined) errors.inc({ code: o.errorCode });
  };
}

/** What this process's export attempts did, recorded as each ends. */
function exportRecorder(registry: Registry, { rows, bytes }: ExportedCounters): Metrics['recordExport'] {
  const attempt = attemptRecorder(registry, {
    attempts: { name: 'analytics_export_attempts_total', help: 'Export attempts this process ended, by outcome' },
    duration: { name: 'analytics_export_duration_seconds', help: 'Duration of export attempts run by this process' },
    errors: {
      name: 'analytics_export_errors_total',
      help: 'Export attempts this process ended with an error (failed, cancelled or re-queued for a retry), by error code',
    },
  });
  const size = new Histogram({
    name: 'analytics_export_size_bytes',
    help: 'Size of the CSV files of complete exports',
    buckets: SIZE_BUCKETS,
    registers: [registry],
  });
  const queued = new Histogram({
    name: 'analytics_export_queue_wait_seconds',
    help: 'Time from an export being due (run_at) to a worker claiming it',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });

  return (o) => {
    attempt(o);
    queued.observe(o.queuedSeconds);
    if (o.outcome === 'complete') {
      size.observe(o.bytes);
      if (!o.sliced) {
        rows.inc(o.rows);
        bytes.inc(o.bytes);
      }
    }
  };
}

/**
 * The slices of sliced exports: in the database by status (at scrape time), and the attempts at
 * them this process ended, as the export attempts' metrics but under their own names (a slice
 * attempt is not an export attempt). A complete slice's rows and bytes count as exported.
 */
function sliceRecorder(registry: Registry, sql: Sql, { rows, bytes }: ExportedCounters): Metrics['recordSlice'] {
  new Gauge({
    name: 'analytics_export_slices',
    help: 'Slices of sliced exports in the database, by status',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const counts = await countSlicesByStatus(sql);
      this.reset();
      for (const row of counts) this.set({ status: row.status }, row.n);
    },
  });
  const attempt = attemptRecorder(registry, {
    attempts: {
      name: 'analytics_export_slice_attempts_total',
      help: 'Attempts at slices of sliced exports this process ended, by outcome',
    },
    duration: { name: 'analytics_export_slice_duration_seconds', help: 'Duration of slice attempts run by this process' },
    errors: {
      name: 'analytics_export_slice_errors_total',
      help: 'Slice attempts this process ended with an error (failed, cancelled or re-queued for a retry), by error code',
    },
  });

  return (o) => {
    attempt(o);
    if (o.outcome === 'complete') {
      rows.inc(o.rows);
      bytes.inc(o.bytes);
    }
  };
}

/** HTTP requests this process served (src/http/request-log.ts records them). */
function requestRecorder(registry: Registry): Metrics['recordRequest'] {
  const requests = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP requests served, by method, route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  return (method, route, status, seconds) => {
    requests.observe({ method, route, status: String(status) }, seconds);
  };
}

/** Webhook delivery attempts this process made, and the notifications pending in the database at scrape time. */
function webhookRecorder(registry: Registry, sql: Sql): Metrics['recordWebhookAttempt'] {
  const attempts = new Counter({
    name: 'analytics_export_webhook_attempts_total',
    help: 'Webhook delivery attempts this process made, by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  });
  for (const outcome of WEBHOOK_OUTCOMES) attempts.inc({ outcome }, 0);
  new Gauge({
    name: 'analytics_export_webhooks_pending',
    help: 'Export notifications neither delivered nor given up',
    registers: [registry],
    async collect() {
      this.set(await countPendingWebhooks(sql));
    },
  });
  return (outcome) => attempts.inc({ outcome });
}
