/** What `hcs` exits with: scripts branch on these, so they never change meaning. */
export const ExitCode = {
  Ok: 0,
  /** The operation (or wave) ended Failed or Canceled, a billing reconciliation found differences, or the API failed on its side (5xx). */
  Failed: 1,
  /** The command line was wrong, or there is no token to call the API with. */
  Usage: 2,
  /** The API refused the request (4xx): the message says what to change. */
  Rejected: 3,
  /** The API could not be reached. */
  Unreachable: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
