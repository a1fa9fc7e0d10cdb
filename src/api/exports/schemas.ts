import * as v from 'valibot';
import { EXPORT_ERROR_CODES } from '../../db/schema';
import { EXPORT_COMPRESSIONS, EXPORT_FORMATS } from '../../exports/formats';
import { EXPORT_STATUSES } from '../../exports/status';
import { pageQuery } from '../pagination';
import { MAX_SCOPES, MAX_TAGS, name, notes, scopeFields, tags, text, uuid } from '../validation';

/**
 * The Analytics Export resource's request and response shapes. The request schema validates
 * POST bodies; all of them feed the OpenAPI document. Fields not listed here, such as the
 * read-only ones a client may echo back (id, status, ...), are ignored.
 */

export { EXPORT_STATUSES };

/**
 * Extension: what kind of file the export writes. Absent fields take the database's defaults
 * (csv, none, false): a request with the contract's fields alone gets the plain CSV.
 */
const fileChoice = {
  format: v.pipe(
    v.optional(v.picklist(EXPORT_FORMATS, `Select a valid choice: one of ${EXPORT_FORMATS.join(', ')}.`)),
    v.description('Extension: csv (default), jsonl (JSON Lines) or parquet.'),
  ),
  compression: v.pipe(
    v.optional(v.picklist(EXPORT_COMPRESSIONS, `Select a valid choice: one of ${EXPORT_COMPRESSIONS.join(', ')}.`)),
    v.description('Extension: none (default), gzip or zstd; wraps a csv or jsonl file whole, or is the column codec of a parquet file.'),
  ),
  formula_guard: v.pipe(
    v.optional(v.boolean('Must be a valid boolean.')),
    v.description("Extension, csv only (default false): text cells starting with = + - @ tab or CR are written with a leading '."),
  ),
};
/** notify_url's form; where it may lead (https, a public address) is checked when the export is created. */
const NOTIFY_URL_MAX = 2048;
const notifyUrl = () =>
  v.pipe(
    text(),
    v.maxLength(NOTIFY_URL_MAX, `Ensure this field has no more than ${NOTIFY_URL_MAX} characters.`),
    v.check((s) => {
      try {
        const url = new URL(s);
        return (url.protocol === 'https:' || url.protocol === 'http:') && url.username === '' && url.password === '';
      } catch {
        return false;
      }
    }, 'Enter a valid absolute https URL (without a user name or password).'),
    v.metadata({ maxLength: NOTIFY_URL_MAX, format: 'uri' }),
  );

export const CreateExportBody = v.object({
  name: v.pipe(name(), v.description('Required, 1 to 100 characters.')),
  notes: v.pipe(notes(), v.description('Free text.')),
  query: v.pipe(uuid(), v.description('The Analytics Query to export; the caller must be able to see it.')),
  tags: v.pipe(tags(), v.description(`At most ${MAX_TAGS} tags, each 1 to 50 characters.`)),
  customer_scopes: v.pipe(
    scopeFields.customer_scopes,
    v.description(`At most ${MAX_SCOPES}; defaults to the creator's customer (customer users).`),
  ),
  partner_scopes: v.pipe(
    scopeFields.partner_scopes,
    v.description(`At most ${MAX_SCOPES}; defaults to the creator's partner (partner users).`),
  ),
  ...fileChoice,
  notify_url: v.pipe(
    v.optional(notifyUrl()),
    v.description(
      'Extension: an https URL on a public address, at most 2,048 characters. When the export becomes complete or failed, ' +
        'a Standard Webhooks notification signed with the creator’s webhook secret is POSTed to it. Needs a secret (POST /analytics/webhook-secret/).',
    ),
  ),
});
export type CreateExportInput = v.InferOutput<typeof CreateExportBody>;

/** The list's query string as the handler parses it; ./openapi.ts describes its parameters to clients. */
export const ListExportsQuery = v.object({
  ...pageQuery,
  status: v.optional(text()),
  tags: v.optional(text()),
  name__contains: v.optional(text()),
  query: v.optional(text()),
});

/** GET of one export: `wait` holds the answer until the export is complete or failed, at most that many seconds. */
export const WAIT_MAX_SECONDS = 60;
export const RetrieveExportQuery = v.object({
  wait: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d{1,2}$/, `Must be a whole number of seconds from 1 to ${WAIT_MAX_SECONDS}.`),
      // Before the transform: the OpenAPI document's parameter is the string as sent.
      v.description(
        `Extension: 1 to ${WAIT_MAX_SECONDS}. Answer as soon as the export is complete or failed (at once if it is), or after this many seconds with its current state.`,
      ),
      v.transform(Number),
      v.minValue(1, `Must be a whole number of seconds from 1 to ${WAIT_MAX_SECONDS}.`),
      v.maxValue(WAIT_MAX_SECONDS, `Must be a whole number of seconds from 1 to ${WAIT_MAX_SECONDS}.`),
    ),
  ),
});

const timestamp = (description: string) => v.pipe(v.string(), v.isoTimestamp(), v.description(description));
const nullableTimestamp = (description: string) => v.pipe(v.nullable(v.pipe(v.string(), v.isoTimestamp())), v.description(description));
const count = v.pipe(v.number(), v.integer());
const nullableCount = v.nullable(count);

export const ExportErrors = v.object({
  code: v.pipe(
    v.picklist(EXPORT_ERROR_CODES),
    v.description('Why it failed, as a program tells failures apart; `message` says it to a person.'),
  ),
  message: v.string(),
});

/** The resource as GET returns it: the contract's fields, then the documented extensions. */
export const ExportResource = v.object({
  id: v.pipe(v.string(), v.uuid()),
  created: timestamp('ISO 8601 UTC with microseconds.'),
  modified: timestamp('ISO 8601 UTC with microseconds.'),
  created_by: v.pipe(v.string(), v.uuid()),
  name: v.string(),
  notes: v.string(),
  query: v.pipe(v.string(), v.uuid()),
  status: v.picklist(EXPORT_STATUSES),
  errors: v.pipe(v.nullable(ExportErrors), v.description('Why the export failed; null unless failed.')),
  number_of_rows: v.pipe(nullableCount, v.description('Null unless complete.')),
  total_bytes: v.pipe(nullableCount, v.description('Null unless complete.')),
  tags: v.array(v.string()),
  url: v.pipe(
    v.optional(v.pipe(v.string(), v.url())),
    v.description('Only when complete, on GET of one export: a download link signed on that request, valid 1 hour.'),
  ),
  url_expires: v.pipe(v.optional(v.pipe(v.string(), v.isoTimestamp())), v.description('Extension: when url stops working.')),
  files: v.pipe(
    v.optional(
      v.array(
        v.object({
          url: v.pipe(v.string(), v.url(), v.description('A download link of the file, signed as url is and expiring with it.')),
          number_of_rows: v.pipe(v.number(), v.integer()),
          total_bytes: v.pipe(v.number(), v.integer()),
        }),
      ),
    ),
    v.description(
      'Extension, with url: the files of the export in row order, each a complete file of its format (a CSV with its header); number_of_rows and total_bytes are their sums. ' +
        'One file: url is that file. Several (an export larger than EXPORT_MAX_FILE_MIB): url is a JSON manifest listing them ' +
        '({"entries": [{"url": "s3://bucket/key", "meta": {"content_length", "record_count"}}], "meta": {...}}), never part of the data.',
    ),
  ),
  customer_scopes: v.array(v.pipe(v.string(), v.uuid())),
  partner_scopes: v.array(v.pipe(v.string(), v.uuid())),
  started: nullableTimestamp('Extension: when the latest attempt started.'),
  finished: nullableTimestamp('Extension: when it became complete or failed.'),
  attempts: v.pipe(v.number(), v.integer(), v.description('Extension: how many times a worker has run it.')),
  format: v.pipe(v.picklist(EXPORT_FORMATS), v.description('Extension: the file format.')),
  compression: v.pipe(v.picklist(EXPORT_COMPRESSIONS), v.description('Extension: the compression.')),
  formula_guard: v.pipe(v.boolean(), v.description('Extension: whether formula-like csv cells are guarded.')),
  progress: v.pipe(
    v.optional(
      v.object({
        rows: count,
        bytes: count,
        heartbeat: v.nullable(v.pipe(v.string(), v.isoTimestamp())),
      }),
    ),
    v.description("Extension, only while running: rows and bytes written so far and the worker's last heartbeat."),
  ),
  notify_url: v.pipe(v.nullable(v.string()), v.description('Extension: where the final state is notified; null when nowhere.')),
});
export type ExportResourceBody = v.InferOutput<typeof ExportResource>;
