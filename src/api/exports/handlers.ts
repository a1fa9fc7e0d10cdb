import { createHash } from 'node:crypto';
import type { Context } from 'hono';
import type { ServiceContext } from '../../context';
import { checkExportScopes, checkScopes, defaultScopes, distinctIds } from '../../auth/scopes';
import { cancelExport } from '../../exports/cancel-export';
import { deleteExport } from '../../exports/delete-export';
import { presignDownload } from '../../storage/objects';
import type { ApiEnv } from '../../http/env';
import { ApiError, conflict, invalidFields, notFound } from '../errors';
import { readJsonObject } from '../middleware/body';
import { linkHeader, listFilter } from '../pagination';
import { isUuid, parseOr400 } from '../validation';
import { CreateExportBody, EXPORT_STATUSES, ListExportsQuery, type CreateExportInput } from './schemas';
import { exportResource } from './serialize';
import * as store from './store';
import { reachableOr403, visibleOr404 } from '../visible';

type C = Context<ApiEnv>;

const IDEMPOTENCY_KEY_MAX = 255;

export function exportHandlers(context: ServiceContext) {
  const { sql } = context.database;
  const { s3, logger } = context;
  const signer = context.publicS3 ?? s3;
  const bucket = context.config.s3.bucket;

  const visibleExport = (c: C) => visibleOr404(c, (callerId, id) => store.findVisibleExport(sql, callerId, id));

  return {
    /** POST /analytics/export */
    async create(c: C) {
      const caller = c.get('caller');
      const body = await readJsonObject(c);
      const input = parseOr400(CreateExportBody, body);
      const idempotencyKey = readIdempotencyKey(c);
      const requestHash = idempotencyKey === undefined ? undefined : hashRequest(input);

      if (idempotencyKey !== undefined) {
        const replay = await replayed(caller.id, idempotencyKey, requestHash!);
        if (replay) return c.json(replay, 200);
        await store.releaseExpiredIdempotencyKey(sql, caller.id, idempotencyKey);
      }

      if (!(await store.queryIsVisible(sql, caller.id, input.query))) {
        throw invalidFields({ query: [`Invalid pk "${input.query}" - object does not exist.`] });
      }
      const defaults = defaultScopes(caller);
      const scopes = {
        customerScopes: distinctIds(input.customer_scopes ?? defaults.customerScopes),
        partnerScopes: distinctIds(input.partner_scopes ?? defaults.partnerScopes),
      };
      const scopeErrors = await checkScopes(sql, caller, scopes);
      if (Object.keys(scopeErrors).length > 0) throw invalidFields(scopeErrors);
      const emptyForEveryone = await checkExportScopes(sql, scopes);
      if (Object.keys(emptyForEveryone).length > 0) throw invalidFields(emptyForEveryone);

      let row: store.ExportRow;
      try {
        // Read back by the creating statement itself: a worker may claim the export the moment it
        // commits, and the answer to POST is the export as created (queued), as the spec shows.
        row = await store.createExportRow(sql, {
          createdBy: caller.id,
          name: input.name,
          notes: input.notes,
          queryId: input.query,
          tags: input.tags,
          ...scopes,
          maxAttempts: context.config.export.maxAttempts,
          idempotencyKey,
          requestHash,
        });
      } catch (error) {
        // Two requests with one key at once: the unique index lets one in; the other replays it.
        if (idempotencyKey !== undefined && isUniqueViolation(error, 'analytics_exports_idempotency_key')) {
          const replay = await replayed(caller.id, idempotencyKey, requestHash!);
          if (replay) return c.json(replay, 200);
        }
        throw error;
      }
      return c.json(exportResource(row), 201);
    },

    /** GET /analytics/exports/ */
    async list(c: C) {
      const caller = c.get('caller');
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
      const rows = await store.listVisibleExports(
        sql,
        caller.id,
        {
          statuses,
          tags: listFilter(query.tags ? [query.tags] : undefined),
          nameContains: query.name__contains || undefined,
          queryId,
        },
        page,
      );
      const link = linkHeader(c.req.url, page, rows.length > page.limit);
      if (link) c.header('Link', link);
      return c.json(rows.slice(0, page.limit).map((row) => exportResource(row)));
    },

    /** GET /analytics/exports/{id}/: a complete export's url is signed anew on every request. */
    async retrieve(c: C) {
      const row = await visibleExport(c);
      if (row.status === 'complete' && row.object_key) {
        return c.json(exportResource(row, await presignDownload(signer, bucket, row.object_key)));
      }
      return c.json(exportResource(row));
    },

    /** DELETE /analytics/exports/{id}/: the export and its files (deleteExport says in which order). */
    async remove(c: C) {
      const row = await visibleExport(c);
      await reachableOr403(c, sql, row, 'delete');
      await deleteExport(sql, { s3, bucket, logger }, row.id);
      return c.body(null, 204);
    },

    /** POST /analytics/exports/{id}/cancel/ (extension). */
    async cancel(c: C) {
      const row = await visibleExport(c);
      await reachableOr403(c, sql, row, 'cancel');
      if (row.status === 'complete' || row.status === 'failed') {
        throw conflict(`The export is already ${row.status}; only a queued or running export can be cancelled.`);
      }
      const status = await cancelExport(sql, row.id);
      const after = await store.findVisibleExport(sql, c.get('caller').id, row.id);
      if (!after) throw notFound();
      // Running: the worker has been asked to stop and will fail it shortly.
      return c.json(exportResource(after), status === 'running' ? 202 : 200);
    },
  };

  async function replayed(callerId: string, key: string, requestHash: string) {
    const earlier = await store.findByIdempotencyKey(sql, callerId, key);
    if (!earlier) return undefined;
    if (earlier.request_hash !== requestHash) {
      throw conflict('This Idempotency-Key was used with a different request body in the last 24 hours.');
    }
    const row = await store.findVisibleExport(sql, callerId, earlier.id);
    // Only if the caller's membership changed since: say no more than that the key is taken.
    if (!row) throw conflict('This Idempotency-Key was already used in the last 24 hours.');
    return exportResource(row);
  }
}

function readIdempotencyKey(c: C): string | undefined {
  const key = c.req.header('idempotency-key')?.trim();
  if (key === undefined || key === '') return undefined;
  if (key.length > IDEMPOTENCY_KEY_MAX) {
    throw new ApiError(400, { detail: `Idempotency-Key must be at most ${IDEMPOTENCY_KEY_MAX} characters.` });
  }
  return key;
}

/** The validated body, keys sorted, so that formatting and key order do not make requests differ. */
function hashRequest(input: CreateExportInput): string {
  const canonical = JSON.stringify(input, (_key, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)))
      : value,
  );
  return createHash('sha256').update(canonical).digest('hex');
}

function isUniqueViolation(error: unknown, constraint: string): boolean {
  const e = error as { code?: string; constraint_name?: string };
  return e?.code === '23505' && e.constraint_name === constraint;
}
