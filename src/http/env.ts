import type { RequestIdVariables } from 'hono/request-id';
import type { Caller } from '../auth/scopes';

/** What every request's context carries: its id (for logs and 500s) and, past auth, the caller. */
export interface ApiEnv {
  Variables: RequestIdVariables & { caller: Caller };
}
