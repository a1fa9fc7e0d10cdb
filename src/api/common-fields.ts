import type { CommonRow } from '../db/statements/fragments';

/**
 * The fields every platform object starts with (id, created, modified, created_by, name, notes),
 * as the resources show them, in that order.
 */
export function commonFields(row: CommonRow): CommonRow {
  return { id: row.id, created: row.created, modified: row.modified, created_by: row.created_by, name: row.name, notes: row.notes };
}
