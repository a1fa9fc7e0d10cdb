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

export const text = () => v.pipe(v.string('Not a valid string.'), noNul);

/** A required name: trimmed, 1..100 characters. */
export const name = () =>
  v.pipe(
    text(),
    v.trim(),
    v.nonEmpty('This field may not be blank.'),
    v.maxLength(100, 'Ensure this field has no more than 100 characters.'),
  );

export const notes = () => v.optional(text(), '');

export const uuid = () => v.pipe(text(), v.uuid('Must be a valid UUID.'));

export const uuidList = () => v.array(uuid(), 'Expected a list of items.');

export const tagList = () =>
  v.array(
    v.pipe(text(), v.nonEmpty('A tag may not be blank.'), v.maxLength(50, 'Ensure each tag has no more than 50 characters.')),
    'Expected a list of items.',
  );

export const tags = () => v.optional(tagList(), []);

export const scopeFields = {
  customer_scopes: v.optional(uuidList()),
  partner_scopes: v.optional(uuidList()),
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

export const datetime = () =>
  v.pipe(
    text(),
    v.check(
      isIsoDatetime,
      'Datetime has wrong format. Use ISO 8601 with a time zone, e.g. 2026-01-01T00:00:00Z.',
    ),
  );

function messageFor(issue: v.BaseIssue<unknown>): string {
  // A missing key and an explicit null are the two cases valibot words in its own way.
  if (issue.kind === 'schema' && issue.type === 'object' && issue.received === 'undefined') return 'This field is required.';
  if (issue.kind === 'schema' && issue.received === 'null') return 'This field may not be null.';
  return issue.message;
}

/** Field name -> messages, keyed by the top-level field (a tag's problem is reported on "tags"). */
export function fieldErrorsOf(issues: readonly v.BaseIssue<unknown>[]): FieldErrors {
  const errors: FieldErrors = {};
  for (const issue of issues) {
    const key = issue.path?.[0]?.key;
    const field = typeof key === 'string' ? key : 'non_field_errors';
    const messages = (errors[field] ??= []);
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
