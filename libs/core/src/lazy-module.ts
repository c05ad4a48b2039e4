import { createRequire } from 'node:module';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';

const requireLazily = createRequire(__filename);

/**
 * A package loaded when first used (a plain require: the same CommonJS copy the rest of the
 * process uses), for the Azure SDKs a process may never need: @azure/identity and MSAL alone are
 * about 45 MB of RSS in every API and worker process that loads them at start.
 */
export function loadLazily<T>(name: string): T {
  return requireLazily(name) as T;
}

/** A credential made (and its SDK loaded) at its first token request. */
export function lazyCredential(make: () => TokenCredential): TokenCredential {
  let made: TokenCredential | undefined;
  return {
    getToken: (scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> => (made ??= make()).getToken(scopes, options),
  };
}
