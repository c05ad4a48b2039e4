import { Inject, Injectable } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { AddressInfo } from 'node:net';
import { ConsoleSessionRepository, ForbiddenError, type Config, type ConsoleSession } from '../../../../libs/core/src';
import { cookieValue, setHostCookie } from '../auth/cookies';
import type { Principal } from '../auth/principal';
import { CONFIG } from '../tokens';
import { hashSecret, isWellFormedSecret } from './session-secret';

/** The console's session cookie: `__Host-` (Secure, Path=/, host-only), HttpOnly, SameSite=Lax. */
export const SESSION_COOKIE = '__Host-mc_session';
/** The console's sign-in binding (browser-binding.ts): set by /auth/login, required by /auth/callback. */
export const LOGIN_COOKIE = '__Host-mc_login';

/**
 * The console's public origin: CONSOLE_ORIGIN, else http://<HOST>:<the port the API listens on>
 * (read when first needed, so a test API on port 0 knows its own).
 */
@Injectable()
export class ConsoleOrigin {
  constructor(@Inject(CONFIG) private readonly config: Config, private readonly adapterHost: HttpAdapterHost) {}

  get value(): string {
    if (this.config.CONSOLE_ORIGIN) return this.config.CONSOLE_ORIGIN;
    const address = this.adapterHost.httpAdapter.getHttpServer().address() as AddressInfo | string | null;
    const port = address && typeof address === 'object' ? address.port : this.config.PORT;
    const host = ['0.0.0.0', '::', ''].includes(this.config.HOST) ? '127.0.0.1' : this.config.HOST.includes(':') ? `[${this.config.HOST}]` : this.config.HOST;
    return `http://${host}:${port}`;
  }

  /** The OAuth redirect URI registered with the identity provider. */
  get redirectUri(): string {
    return `${this.value}/auth/callback`;
  }
}

/** Finds the console session behind a request's cookie, and writes the cookie. */
@Injectable()
export class ConsoleSessions {
  constructor(private readonly repo: ConsoleSessionRepository) {}

  /** The live session of this Cookie header with its secret (the cookie's value), or undefined. */
  async resolve(cookieHeader: string | string[] | undefined): Promise<{ session: ConsoleSession; secret: string } | undefined> {
    const secret = cookieValue(cookieHeader, SESSION_COOKIE);
    if (!isWellFormedSecret(secret)) return undefined;
    const session = await this.repo.findSession(hashSecret(secret));
    return session ? { session, secret } : undefined;
  }

  /** A Set-Cookie header value for a new session (maxAgeS 0 clears it). */
  cookie(secret: string, maxAgeS: number): string {
    return setHostCookie(SESSION_COOKIE, secret, { maxAgeS, sameSite: 'Lax' });
  }

  clearCookie(): string {
    return this.cookie('', 0);
  }
}

export function principalOf(session: Pick<ConsoleSession, 'tenantId' | 'userId' | 'name' | 'roles'>): Principal {
  return { tenantId: session.tenantId, userId: session.userId, name: session.name, roles: new Set(session.roles) };
}

/** Requests that change something: with the session cookie they need the CSRF token. */
export function isMutating(method: string): boolean {
  return !['GET', 'HEAD', 'OPTIONS'].includes(method.toUpperCase());
}

export function csrfRequired(): ForbiddenError {
  return new ForbiddenError('csrf_required', 'a change made with the console session cookie needs the X-CSRF-Token header: the csrfToken from GET /auth/session');
}
