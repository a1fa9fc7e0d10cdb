import type { RequestIdVariables } from 'hono/request-id';
import type { Caller } from '../auth/scopes';

/**
 * What every request's context carries: its id (for logs and 500s) and, past auth, the caller; on
 * a route whose handler checks the key itself (src/api/middleware/auth.ts), the key until then.
 */
export interface ApiEnv {
  Variables: RequestIdVariables & { caller: Caller; apiKey?: string };
}
