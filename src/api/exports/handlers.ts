import type { Context } from 'hono';
import type { ServiceContext } from '../../context';
import { defaultScopes, distinctIds } from '../../auth/scopes';
import { findExportForKey, findVisibleExport, findVisibleExportWithFiles, listVisibleExports } from '../../db/statements/exports';
import { type CancelOutcome, cancelExport, ExportAlreadyFinished } from '../../exports/cancel-export';
import { createExport, hashRequest, IdempotencyKeyConflict, InvalidExportRequest } from '../../exports/create-export';
import { deleteExport } from '../../exports/delete-export';
import { DEFAULT_ENCODING, encodingProblems } from '../../exports/formats';
import { ExportWaits } from '../../exports/export-waits';
import { isFinal } from '../../exports/status';
import { presignDownload } from '../../storage/objects';
import type { ApiEnv } from '../../http/env';
import { ApiError, conflict, invalidFields, notFound } from '../errors';
import { readAsCaller } from '../middleware/auth';
import { readJsonObject } from '../middleware/body';
import { linkHeader, listFilter } from '../pagination';
import { isUuid, parseOr400 } from '../validation';
import { CreateExportBody, EXPORT_STATUSES, ListExportsQuery, RetrieveExportQuery } from './schemas';
import { exportResource } from './serialize';
import { pathId, reachableOr403, visibleOr404 } from '../visible';

/** Each handler parses the request, calls the export domain (src/exports) or a statement, and serialises. */

type C = Context<ApiEnv>;

const IDEMPOTENCY_KEY_MAX = 255;

export function exportHandlers(context: ServiceContext) {
  const waits = context.exportWaits ?? new ExportWaits({ connectionString: context.databaseUrl, logger: context.logger });
  return {
    create: (c: C) => create(context, c),
    list: (c: C) => list(context, c),
    retrieve: (c: C) => retrieve(context, waits, c),
    remove: (c: C) => remove(context, c),
    cancel: (c: C) => cancel(context, c),
  };
}

const visibleExport = (context: ServiceContext, c: C) =>
  visibleOr404(c, (callerId, id) => findVisibleExport(context.database.sql, callerId, id));

/** POST /analytics/export */
async function create(context: ServiceContext, c: C) {
  const caller = c.get('caller');
  const body = await readJsonObject(c);
  const input = parseOr400(CreateExportBody, body);
  const problems = encodingProblems({
    format: input.format ?? DEFAULT_ENCODING.format,
    compression: input.compression ?? DEFAULT_ENCODING.compression,
    formulaGuard: input.formula_guard ?? DEFAULT_ENCODING.formulaGuard,
  });
  if (Object.keys(problems).length > 0) throw invalidFields(problems);
  const idempotencyKey = readIdempotencyKey(c);
  const defaults = defaultScopes(caller);
  try {
    const created = await createExport(
      context.database.sql,
      {
        createdBy: caller.id,
        name: input.name,
        notes: input.notes,
        queryId: input.query,
        tags: input.tags,
        customerScopes: distinctIds(input.customer_scopes ?? defaults.customerScopes),
        partnerScopes: distinctIds(input.partner_scopes ?? defaults.partnerScopes),
        maxAttempts: context.config.export.maxAttempts,
        format: input.format,
        compression: input.compression,
        formulaGuard: input.formula_guard,
        idempotencyKey,
        requestHash: idempotencyKey === undefined ? undefined : hashRequest(input),
        notifyUrl: input.notify_url,
      },
      caller,
      { allowPrivateNotifyUrl: context.config.webhooks.allowPrivate },
    );
    return c.json(exportResource(created.row), created.replayed ? 200 : 201);
  } catch (error) {
    if (error instanceof InvalidExportRequest) throw invalidFields(error.fields);
    if (error instanceof IdempotencyKeyConflict) throw conflict(error.message);
    throw error;
  }
}

/** GET /analytics/exports/ */
async function list(context: ServiceContext, c: C) {
  const raw: Record<string, string> = {};
  for (const key of ['limit', 'offset', 'status', 'tags', 'name__contains', 'query']) {
    const values = c.req.queries(key);
    if (values) raw[key] = values.join(',');
  }
  const query = parseOr400(ListExportsQuery, raw);
  const statuses = listFilter(query.status ? [query.status] : undefined);
  const unknownStatus = statuses?.find((s) => !(EXPORT_STATUSES as readonly string[]).includes(s));
  if (unknownStatus !== undefined) {
    throw invalidFields({ status: [`Select a valid choice. ${unknownStatus} is not one of the available choices.`] });
  }
  const queryId = query.query?.trim() || undefined;
  if (queryId !== undefined && !isUuid(queryId)) throw invalidFields({ query: ['Must be a valid UUID.'] });
  const page = { limit: query.limit, offset: query.offset };
  const filters = {
    statuses,
    tags: listFilter(query.tags ? [query.tags] : undefined),
    nameContains: query.name__contains || undefined,
    queryId,
  };
  const rows = await listVisibleExports(context.database.sql, c.get('caller').id, filters, page);
  const link = linkHeader(c.req.url, page, rows.length > page.limit);
  if (link) c.header('Link', link);
  return c.json(rows.slice(0, page.limit).map((row) => exportResource(row)));
}

/**
 * GET /analytics/exports/{id}/: a complete export's url, and the url of each of its files, are
 * signed anew on every request, at one instant (they expire together; a key is signed once, so a
 * single file's url is the export's). The export and its files are read together. With
 * ?wait=N (extension) the answer waits until the export is complete or failed, at most N seconds.
 */
async function retrieve(context: ServiceContext, waits: ExportWaits, c: C) {
  const { sql } = context.database;
  const found = await readAsCaller(c, (keyHash) => findExportForKey(sql, keyHash, pathId(c)));
  const { wait } = parseOr400(RetrieveExportQuery, { wait: c.req.query('wait') });
  if (!found) throw notFound();
  let row = found;
  if (wait !== undefined && !isFinal(row.status)) {
    const find = () => findVisibleExportWithFiles(sql, c.get('caller').id, row.id);
    const finished = await waits.wait(row.id, wait * 1000, c.req.raw.signal, find, (r) => r === undefined || isFinal(r.status));
    const now = finished === undefined ? await find() : finished;
    // Deleted while it was waited for.
    if (!now) throw notFound();
    row = now;
  }
  if (row.status === 'complete' && row.object_key) {
    const signer = context.publicS3 ?? context.s3;
    const { bucket } = context.config.s3;
    const signingTime = new Date();
    const keys = [...new Set([row.object_key, ...row.files.map((file) => file.object_key)])];
    const signed = new Map(
      await Promise.all(keys.map(async (key) => [key, await presignDownload(signer, bucket, key, signingTime)] as const)),
    );
    const files = row.files.map((file) => ({ ...file, url: signed.get(file.object_key)!.url }));
    return c.json(exportResource(row, { ...signed.get(row.object_key)!, files }));
  }
  return c.json(exportResource(row));
}

/** DELETE /analytics/exports/{id}/: the export and its files (deleteExport says in which order). */
async function remove(context: ServiceContext, c: C) {
  const { sql } = context.database;
  const row = await visibleExport(context, c);
  await reachableOr403(c, sql, row, 'delete');
  await deleteExport(sql, { s3: context.s3, bucket: context.config.s3.bucket, logger: context.logger }, row.id);
  return c.body(null, 204);
}

/** POST /analytics/exports/{id}/cancel/ (extension). */
async function cancel(context: ServiceContext, c: C) {
  const { sql } = context.database;
  const row = await visibleExport(context, c);
  await reachableOr403(c, sql, row, 'cancel');
  let after: CancelOutcome;
  try {
    after = await cancelExport(sql, c.get('caller').id, row);
  } catch (error) {
    if (error instanceof ExportAlreadyFinished) throw conflict(error.message);
    throw error;
  }
  if (!after.row) throw notFound();
  // Running: the worker has been asked to stop and will fail it shortly.
  return c.json(exportResource(after.row), after.stopping ? 202 : 200);
}

function readIdempotencyKey(c: C): string | undefined {
  const key = c.req.header('idempotency-key')?.trim();
  if (key === undefined || key === '') return undefined;
  if (key.length > IDEMPOTENCY_KEY_MAX) {
    throw new ApiError(400, { detail: `Idempotency-Key must be at most ${IDEMPOTENCY_KEY_MAX} characters.` });
  }
  return key;
}
