import pg from 'pg';
import * as v from 'valibot';
import { QUERY_AGGREGATIONS as AGGREGATIONS, QUERY_INTERVALS as INTERVALS } from '../db/schema';
import { UUID_PATTERN } from '../uuid';

/**
 * The analytics query behind an export, compiled into the one SELECT that the worker's
 * `COPY (...) TO STDOUT` runs and that the CLI prints.
 *
 * COPY takes no bind parameters, so the SELECT is built as text: only from values checked here
 * (ids by pattern, metrics against the catalogue, interval and aggregation by enum, the time zone
 * against pg_timezone_names), and every one of them still goes in through pg's escapeLiteral.
 *
 * CSV columns, in order: timestamp,device_id,device_name,space_id,space_name,metric,value.
 * `timestamp` is ISO 8601 in UTC with microseconds, e.g. 2026-01-31T23:05:00.000000Z (to_char
 * pattern TIMESTAMP_FORMAT); for an aggregated interval it is the start of the bucket. Buckets
 * up to an hour are aligned on UTC; day buckets ('1d') start at local midnight in the query's
 * time zone. Rows are ordered by timestamp, device id, metric, and restricted to the devices that
 * the export's creator may see and that every reader of its scopes may see, when the SELECT runs
 * (export_devices, drizzle/0009_export_audience.sql).
 *
 * The definition is the one the export took from its query when it was created
 * (analytics_exports.query_definition), not the query as it is now.
 */

export const CSV_COLUMNS = ['timestamp', 'device_id', 'device_name', 'space_id', 'space_name', 'metric', 'value'] as const;
export const TIMESTAMP_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"';

/** A definition that passed every check: the only input the compiler accepts. */
export interface ExportQuery {
  createdBy: string;
  /** The export's scopes: its rows are restricted to what every reader of them may see. */
  customerScopes: string[];
  partnerScopes: string[];
  metrics: string[];
  devices: string[];
  spaces: string[];
  /** ISO 8601 with a UTC offset, as Postgres prints a timestamptz in JSON. */
  start: string;
  end: string;
  interval: (typeof INTERVALS)[number];
  aggregation: (typeof AGGREGATIONS)[number] | null;
  timezone: string;
}

/** The definition cannot be compiled: the export fails with this code, it is not retried. */
export class ExportQueryError extends Error {
  override name = 'ExportQueryError';
}

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2}){0,2}$/;
const TIMEZONE = /^[A-Za-z0-9_+\-/]{1,64}$/;

const Uuid = v.pipe(v.string(), v.regex(UUID_PATTERN, 'is not a uuid'));
const Timestamp = v.pipe(v.string(), v.regex(TIMESTAMP, 'is not a finite timestamp'));
const Metric = v.pipe(
  v.string(),
  v.minLength(1, 'is empty'),
  v.maxLength(64, 'is longer than 64 characters'),
  v.check((s) => !s.includes('\0'), 'contains NUL'),
);

// Driver-independent: the row is read as JSON text, so neither driver's type parsers matter.
const StoredDefinition = v.object({
  created_by: Uuid,
  customer_scopes: v.array(Uuid),
  partner_scopes: v.array(Uuid),
  metrics: v.pipe(v.array(Metric), v.minLength(1, 'names no metric'), v.maxLength(20, 'names more than 20 metrics')),
  devices: v.array(Uuid),
  spaces: v.array(Uuid),
  start: Timestamp,
  end: Timestamp,
  interval: v.picklist(INTERVALS, 'is not an interval'),
  aggregation: v.nullable(v.picklist(AGGREGATIONS, 'is not an aggregation')),
  timezone: v.pipe(v.string(), v.regex(TIMEZONE, 'is not a time zone name')),
  unknown_metrics: v.array(v.string()),
  timezone_known: v.boolean(),
});

/** Checks a definition as the database reads it (src/db/statements/export-definition.ts). */
export function parseExportDefinition(definition: unknown): ExportQuery {
  if (typeof definition !== 'string') throw new ExportQueryError('the export has no query definition');
  const parsed = v.safeParse(StoredDefinition, JSON.parse(definition));
  if (!parsed.success) {
    const problems = parsed.issues.map((issue) => `${v.getDotPath(issue) ?? 'query'} ${issue.message}`);
    throw new ExportQueryError(`the analytics query is invalid: ${problems.join('; ')}`);
  }
  const d = parsed.output;
  if (d.unknown_metrics.length > 0) {
    throw new ExportQueryError(`the analytics query names metrics not in the catalogue: ${d.unknown_metrics.join(', ')}`);
  }
  if (!d.timezone_known) throw new ExportQueryError(`the analytics query's time zone ${d.timezone} is unknown`);
  if ((d.interval === 'raw') !== (d.aggregation === null)) {
    throw new ExportQueryError('the analytics query needs an aggregation exactly when its interval is not raw');
  }
  return {
    createdBy: d.created_by,
    customerScopes: d.customer_scopes,
    partnerScopes: d.partner_scopes,
    metrics: d.metrics,
    devices: d.devices,
    spaces: d.spaces,
    start: d.start,
    end: d.end,
    interval: d.interval,
    aggregation: d.aggregation,
    timezone: d.timezone,
  };
}

const BUCKET_WIDTH = { '1m': '1 minute', '5m': '5 minutes', '15m': '15 minutes', '1h': '1 hour' } as const;
const MINUTE_MS = 60_000;
/** Each interval's width in milliseconds (a day's: 24 hours; bucketsInRange allows for one of 25). */
const BUCKET_MS = { '1m': MINUTE_MS, '5m': 5 * MINUTE_MS, '15m': 15 * MINUTE_MS, '1h': 60 * MINUTE_MS, '1d': 24 * 60 * MINUTE_MS } as const;

/**
 * What a time slice's boundaries are aligned on, as an interval from 2000-01-01 UTC, so that no
 * row of the export falls on both sides: a reading's own instant for raw rows, the bucket width
 * for buckets up to an hour. Day buckets follow a time zone's midnights and are not sliced.
 */
export function sliceAlignment(interval: ExportQuery['interval']): string | undefined {
  if (interval === 'raw') return '1 microsecond';
  return interval === '1d' ? undefined : BUCKET_WIDTH[interval];
}

const literal = (value: string) => pg.escapeLiteral(value);
const uuidArray = (ids: string[]) => `ARRAY[${ids.map(literal).join(', ')}]::uuid[]`;

/**
 * The WITH clause every SELECT of an export starts with: `export_devices`, the devices the export
 * reads (those its creator and every reader of its scopes may see, narrowed to the query's devices
 * and spaces, a space with the spaces under it).
 */
function exportDevicesWith(query: ExportQuery): string {
  const ctes: string[] = [];
  if (query.spaces.length > 0) {
    ctes.push(`selected_spaces AS (
    SELECT s.id FROM spaces AS s WHERE s.id = ANY (${uuidArray(query.spaces)})
    UNION
    SELECT child.id FROM spaces AS child JOIN selected_spaces AS parent ON child.parent_id = parent.id
  )`);
  }
  const chosen = [
    query.devices.length > 0 ? `d.id = ANY (${uuidArray(query.devices)})` : undefined,
    query.spaces.length > 0 ? 'd.space_id IN (SELECT id FROM selected_spaces)' : undefined,
  ].filter((clause) => clause !== undefined);
  ctes.push(`export_devices AS (
    SELECT d.id, d.name, d.space_id
      FROM export_devices(${literal(query.createdBy)}::uuid, ${uuidArray(query.customerScopes)}, ${uuidArray(query.partnerScopes)}) AS d${chosen.length > 0 ? `\n     WHERE ${chosen.join(' OR ')}` : ''}
  )`);
  return `WITH${query.spaces.length > 0 ? ' RECURSIVE' : ''}\n  ${ctes.join(',\n  ')}`;
}

/** The readings of the query's metrics in its time range. */
function readingsFilter(query: ExportQuery): string {
  return `r.metric = ANY (ARRAY[${query.metrics.map(literal).join(', ')}]::text[])
     AND r.ts >= ${literal(query.start)}::timestamptz
     AND r.ts < ${literal(query.end)}::timestamptz`;
}

/** The ids of the devices the export reads, by the same rules as its SELECT. */
export function compileExportDevicesSelect(query: ExportQuery): string {
  return `${exportDevicesWith(query)}
SELECT id FROM export_devices`;
}

/**
 * For the planner only (EXPLAIN, never run for rows): the readings the export reads, given the
 * ids of its devices. With the ids as literals the planner estimates from the readings' own
 * statistics per device, where the visibility functions of the export's SELECT leave it a default
 * guess (a third of the devices).
 */
export function compileReadingsEstimateSelect(query: ExportQuery, deviceIds: string[]): string {
  return `SELECT 1 FROM device_readings AS r
 WHERE r.device_id = ANY (${uuidArray(deviceIds)})
   AND ${readingsFilter(query)}`;
}

/** At most how many buckets of the query's interval its time range holds; undefined for raw rows. */
export function bucketsInRange(query: ExportQuery): number | undefined {
  if (query.interval === 'raw') return undefined;
  // One more for a range that does not start on a bucket boundary; a day of 25 hours still fits.
  return Math.ceil((Date.parse(query.end) - Date.parse(query.start)) / BUCKET_MS[query.interval]) + 1;
}

/** The SELECT for a checked definition. Pure: the same definition always gives the same text. */
export function compileAnalyticsSelect(query: ExportQuery): string {
  const readings = readingsFilter(query);
  const withClause = exportDevicesWith(query);
  const columns = (ts: string, metric: string, value: string) =>
    `to_char(${ts} AT TIME ZONE 'UTC', ${literal(TIMESTAMP_FORMAT)}) AS "timestamp",
       d.id AS device_id, d.name AS device_name, d.space_id, s.name AS space_name, ${metric} AS metric, ${value} AS value`;

  if (query.interval === 'raw') {
    return `${withClause}
SELECT ${columns('r.ts', 'r.metric', 'r.value')}
  FROM device_readings AS r
  JOIN export_devices AS d ON d.id = r.device_id
  LEFT JOIN spaces AS s ON s.id = d.space_id
 WHERE ${readings}
 ORDER BY r.ts, d.id, r.metric`;
  }

  const bucket =
    query.interval === '1d'
      ? `date_trunc('day', r.ts, ${literal(query.timezone)})`
      : `date_bin(interval ${literal(BUCKET_WIDTH[query.interval])}, r.ts, timestamptz '2000-01-01 00:00:00+00')`;
  const aggregate = query.aggregation === 'count' ? 'count(r.value)::double precision' : `${query.aggregation}(r.value)`;
  return `${withClause}
SELECT ${columns('b.bucket', 'b.metric', 'b.value')}
  FROM (SELECT r.device_id, r.metric, ${bucket} AS bucket, ${aggregate} AS value
          FROM device_readings AS r
         WHERE r.device_id IN (SELECT id FROM export_devices)
           AND ${readings}
         GROUP BY 1, 2, 3) AS b
  JOIN export_devices AS d ON d.id = b.device_id
  LEFT JOIN spaces AS s ON s.id = d.space_id
 ORDER BY b.bucket, d.id, b.metric`;
}
