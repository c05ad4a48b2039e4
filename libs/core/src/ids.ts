/**
 * Ids as the API accepts them: a UUID is exactly 8-4-4-4-12 hexadecimal digits.
 * A looser check (36 characters of hex digits and hyphens) lets "------..."
 * through to PostgreSQL's ::uuid cast, which then fails the request with a 500.
 */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID_PATTERN.test(value);
}
