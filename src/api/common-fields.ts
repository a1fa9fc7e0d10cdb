/**
 * The fields every platform object starts with (id, created, modified, created_by, name, notes),
 * as the stores read them and as the resources show them, in that order.
 */
export interface CommonRow {
  id: string;
  created: string;
  modified: string;
  created_by: string;
  name: string;
  notes: string;
}

export function commonFields(row: CommonRow): CommonRow {
  return { id: row.id, created: row.created, modified: row.modified, created_by: row.created_by, name: row.name, notes: row.notes };
}
