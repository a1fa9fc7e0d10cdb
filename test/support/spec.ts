/** The fields of the Analytics Export resource as the contract lists them, in its order: always present. */
export const EXPORT_SPEC_FIELDS = [
  'id',
  'created',
  'modified',
  'created_by',
  'name',
  'notes',
  'query',
  'status',
  'errors',
  'number_of_rows',
  'total_bytes',
  'tags',
] as const;
