import * as v from 'valibot';
import { invalidFields, type FieldErrors } from './errors';

/**
 * The valibot pieces request schemas are built from, with the platform's messages, and the one
 * function that turns valibot's issues into a 400 `{"field": ["message"]}`. The same schemas
 * produce the OpenAPI document (src/api/openapi.ts).
 */

export { isUuid } from '../uuid';

/** Postgres text cannot hold NUL; refusing it here keeps such input a 400, not a 500. */
const noNul = v.check<string, string>((s) => !s.includes('\u0000'), 'Null characters are not allowed.');

/**
 * A lone UTF-16 surrogate (JSON can spell one, "\ud800") has no UTF-8 form: it would be stored
 * as U+FFFD. Refused, so that what is stored is what was sent. In a /u regex a well-formed pair
 * is one code point, so only a lone surrogate is \p{Surrogate}.
 */
const LONE_SURROGATE = /\p{Surrogate}/u;
const wellFormed = v.check<string, string>((s) => !LONE_SURROGATE.test(s), 'Invalid character: a lone UTF-16 surrogate is not text.');

export const text = () => v.pipe(v.string('Not a valid string.'), noNul, wellFormed);

/** Characters as the contract and the database (char_length) count them: code points, not UTF-16 units. */
function characterCount(s: string): number {
  let count = 0;
  for (const _ of s) count++;
  return count;
}

/**
 * At most `max` characters. valibot's maxLength counts UTF-16 units (an emoji is two). Paired with
 * `v.metadata({ maxLength })`, which states the bound in the OpenAPI document (JSON Schema's
 * maxLength counts code points too).
 */
const maxCharacters = (max: number, message: string) => v.check<string, string>((s) => characterCount(s) <= max, message);

/** A required name: trimmed, 1..100 characters. */
export const name = () =>
  v.pipe(
    text(),
    v.trim(),
    v.nonEmpty('This field may not be blank.'),
    maxCharacters(100, 'Ensure this field has no more than 100 characters.'),
    v.metadata({ maxLength: 100 }),
  );

export const notes = () => v.optional(text(), '');

export const uuid = () => v.pipe(text(), v.uuid('Must be a valid UUID.'));

/** Limits on list fields: each far above real use, so that no request stores or compiles an unbounded list. */
export const MAX_TAGS = 100;
export const MAX_SCOPES = 100;
export const MAX_DEVICES = 1000;
export const MAX_SPACES = 100;

const tooMany = (max: number) => `Ensure this field has no more than ${max} elements.`;

export const uuidList = (max: number) => v.pipe(v.array(uuid(), 'Expected a list of items.'), v.maxLength(max, tooMany(max)));

export const tagList = () =>
  v.pipe(
    v.array(
      v.pipe(
        text(),
        v.nonEmpty('A tag may not be blank.'),
        maxCharacters(50, 'Ensure each tag has no more than 50 characters.'),
        v.metadata({ maxLength: 50 }),
      ),
      'Expected a list of items.',
    ),
    v.maxLength(MAX_TAGS, tooMany(MAX_TAGS)),
  );

export const tags = () => v.optional(tagList(), []);

export const scopeFields = {
  customer_scopes: v.optional(uuidList(MAX_SCOPES)),
  partner_scopes: v.optional(uuidList(MAX_SCOPES)),
};

/** ISO 8601 with a time zone (Z or an offset), e.g. 2026-01-01T00:00:00Z. */
const ISO_DATETIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(?:Z|[+-](\d{2}):?(\d{2}))$/i;

/** A real instant: JavaScript's parser would take 2026-02-31 as March 3, Postgres refuses it. */
function isIsoDatetime(s: string): boolean {
  const m = ISO_DATETIME.exec(s);
  if (!m) return false;
  const [year, month, day, hour, minute, second = '0', offsetHours = '0', offsetMinutes = '0'] = m.slice(1).map((x) => x ?? undefined);
  const date = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)));
  return (
    year !== '0000' &&
    date.getUTCMonth() === Number(month) - 1 &&
    date.getUTCDate() === Number(day) &&
    Number(hour) <= 23 &&
    Number(minute) <= 59 &&
    Number(second) <= 59 &&
    Number(offsetHours) <= 15 &&
    Number(offsetMinutes) <= 59 &&
    !Number.isNaN(Date.parse(s))
  );
}

/**
 * The instants a query may name: years 1900 to 9999 in UTC (after the offset is applied).
 * Postgres would store earlier years (as BC) and later ones (as year 10000), which neither the
 * API's nor the CSV's four-digit years can show; before 1900 the time zone database has only
 * local mean time, so day buckets would start at odd seconds. No sensor reading is that old.
 */
export const EARLIEST_DATETIME = '1900-01-01T00:00:00Z';
export const LATEST_DATETIME = '9999-12-31T23:59:59.999999Z';
const EARLIEST_MS = Date.parse(EARLIEST_DATETIME);
const END_OF_RANGE_MS = Date.parse('+010000-01-01T00:00:00Z');

export const datetime = () =>
  v.pipe(
    text(),
    v.check(isIsoDatetime, 'Datetime has wrong format. Use ISO 8601 with a time zone, e.g. 2026-01-01T00:00:00Z.'),
    v.check((s) => {
      const instant = Date.parse(s);
      return instant >= EARLIEST_MS && instant < END_OF_RANGE_MS;
    }, `Datetime out of range: use an instant from ${EARLIEST_DATETIME} to ${LATEST_DATETIME} (in UTC, after its offset).`),
    // States the type in the OpenAPI document (RFC 3339 date-time; seconds may also be left out).
    v.metadata({ format: 'date-time' }),
  );

function messageFor(issue: v.BaseIssue<unknown>): string {
  // A missing key and an explicit null are the two cases valibot words in its own way.
  if (issue.kind === 'schema' && issue.type === 'object' && issue.received === 'undefined') return 'This field is required.';
  if (issue.kind === 'schema' && issue.received === 'null') return 'This field may not be null.';
  return issue.message;
}

/** Field name -> messages, keyed by the top-level field (a tag's problem is reported on "tags"). */
function fieldErrorsOf(issues: readonly v.BaseIssue<unknown>[]): FieldErrors {
  const errors: FieldErrors = {};
  for (const issue of issues) {
    const key = issue.path?.[0]?.key;
    const field = typeof key === 'string' ? key : 'non_field_errors';
    errors[field] ??= [];
    const messages = errors[field];
    const message = messageFor(issue);
    if (!messages.includes(message)) messages.push(message);
  }
  return errors;
}

/** Parses input with the schema, or throws the 400 that lists every field's problems. */
export function parseOr400<TSchema extends v.GenericSchema>(schema: TSchema, input: unknown): v.InferOutput<TSchema> {
  const result = v.safeParse(schema, input, { abortPipeEarly: true });
  if (!result.success) throw invalidFields(fieldErrorsOf(result.issues));
  return result.output;
}
