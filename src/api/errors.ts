import { ApiError } from '../http/errors';

/** The API's error responses; ApiError and the error handler are in src/http/errors.ts. */

export { ApiError };

export type FieldErrors = Record<string, string[]>;

export const notFound = () => new ApiError(404, { detail: 'Not found.' });
export const forbidden = (detail: string) => new ApiError(403, { detail });
export const invalidFields = (errors: FieldErrors) => new ApiError(400, errors);
export const conflict = (detail: string) => new ApiError(409, { detail });
