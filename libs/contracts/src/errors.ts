import { z } from 'zod';

/** The body of every refusal and failure: `{ error: { code, message, details? } }`. */
export const ERROR_BODY = z.strictObject({
  error: z.strictObject({
    code: z.string().meta({ description: 'Stable, machine-readable: missing_name, cluster_not_found, ...' }),
    message: z.string().meta({ description: 'What went wrong and what to do about it' }),
    details: z.record(z.string(), z.unknown()).optional().meta({ description: 'field: the request field at fault; allowed: the values it may take; and so on' }),
  }),
}).meta({ id: 'Error' });
export type ErrorBody = z.infer<typeof ERROR_BODY>;

/**
 * An answer of 400 or more from the API, as the console and the CLI see it: the status and the
 * error body's parts. `status` 0: no answer at all (the console's fetch failed).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** From an answer's status and text: the error body when it is one, else what can be said. */
  static from(status: number, text: string, statusText = ''): ApiError {
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    const r = ERROR_BODY.safeParse(parsed);
    if (r.success) return new ApiError(status, r.data.error.code, r.data.error.message, r.data.error.details);
    return new ApiError(status, `http_${status}`, text.slice(0, 200) || `the server answered ${status}${statusText ? ` ${statusText}` : ''}`);
  }

  /** The request field the server named as wrong (`details.field`), e.g. `name` or `snapshotPolicy.retention`. */
  get field(): string | undefined {
    const f = this.details?.field;
    return typeof f === 'string' ? f : undefined;
  }
}
