/**
 * Ids as the API accepts them: a UUID is exactly 8-4-4-4-12 hexadecimal digits.
 * A looser check (36 characters of hex digits and hyphens) lets "------..."
 * through to PostgreSQL's ::uuid cast, which then fails the request with a 500.
 */
export { UUID_PATTERN, isUuid } from '../../contracts/src';
