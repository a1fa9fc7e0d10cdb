/** The outcome of one readiness check (GET /readyz): a dependency, or the worker's job runner. */
export interface CheckResult {
  status: 'ok' | 'failed';
  duration_ms: number;
  /** Why it failed, for the operator: the driver's or the SDK's own message. */
  error?: string;
}
