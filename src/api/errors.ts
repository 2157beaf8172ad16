import { CairnError } from '../core/errors.js';

/** HTTP status by error code: the one table that maps cairn's errors to the API. Codes not in
 *  it are server errors. */
export const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  E_USAGE: 400,
  E_VALIDATION: 400,
  E_UNAUTHORIZED: 401,
  E_FORBIDDEN: 403,
  E_JOB_NOT_FOUND: 404,
  // a source named in a request body is a bad field of that request, not a missing resource
  E_SOURCE_NOT_FOUND: 400,
  E_SNAPSHOT_NOT_FOUND: 404,
  E_NOT_FOUND: 404,
  E_JOB_FINISHED: 409,
  E_REPO_LOCKED: 409,
  E_STATE: 503,
  E_REPO_NOT_FOUND: 503,
};

/** An error body for anything thrown in a handler. */
export function errorBody(err: unknown): { statusCode: number; code: string; error: string; message: string; hint?: string } {
  if (err instanceof CairnError) {
    const statusCode = STATUS_BY_CODE[err.code] ?? 500;
    return { statusCode, code: err.code, error: reasonPhrase(statusCode), message: err.message, ...(err.hint !== undefined ? { hint: err.hint } : {}) };
  }
  const e = err as { statusCode?: number; code?: string; message?: string; validation?: unknown };
  if (e.validation !== undefined) return { statusCode: 400, code: 'E_VALIDATION', error: 'Bad Request', message: e.message ?? 'invalid request' };
  const statusCode = typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 600 ? e.statusCode : 500;
  if (statusCode < 500) return { statusCode, code: statusCode === 404 ? 'E_NOT_FOUND' : 'E_BAD_REQUEST', error: reasonPhrase(statusCode), message: e.message ?? reasonPhrase(statusCode) };
  return { statusCode, code: 'E_INTERNAL', error: reasonPhrase(statusCode), message: 'internal error: the agent log has the details' };
}

function reasonPhrase(status: number): string {
  return ({ 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 415: 'Unsupported Media Type', 413: 'Payload Too Large', 503: 'Service Unavailable' } as Record<number, string>)[status] ?? (status >= 500 ? 'Internal Server Error' : 'Error');
}
