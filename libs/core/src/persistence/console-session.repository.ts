import { randomUUID } from 'node:crypto';
import { deleteOnce, type Db } from './prisma';
import type { ConsoleLogin, ConsoleSession } from '../generated/prisma/client';

export type { ConsoleLogin, ConsoleSession };

export interface NewConsoleLogin {
  stateHash: string;
  /** SHA-256 of the sign-in binding cookie of the browser that started it. */
  browserHash: string;
  codeVerifier: string;
  nonce: string;
  returnTo: string;
  redirectUri: string;
  expiresAt: Date;
}

export interface NewConsoleSession {
  tokenHash: string;
  tenantId: string;
  userId: string;
  name: string;
  roles: readonly string[];
  expiresAt: Date;
}

/**
 * The console's pending logins and sessions (Prisma's model API: single-row statements whose
 * Date values Prisma writes as UTC, like the rest of the schema's timestamps). Both are found
 * by a SHA-256 (of the OAuth state, of the session cookie), never by the value itself.
 */
export class ConsoleSessionRepository {
  constructor(private readonly db: Db) {}

  async createLogin(login: NewConsoleLogin): Promise<void> {
    await this.db.consoleLogin.create({ data: login });
  }

  /**
   * Takes a pending login out, once: one DELETE ... RETURNING, so two callbacks with the same
   * state cannot both have it. null when there is none; `expired` when it was there but too old
   * (it is gone either way).
   */
  async takeLogin(stateHash: string, now = new Date()): Promise<{ login: ConsoleLogin; expired: boolean } | null> {
    const login = await deleteOnce(() => this.db.consoleLogin.delete({ where: { stateHash } }));
    return login && { login, expired: login.expiresAt.getTime() <= now.getTime() };
  }

  /**
   * A new session. The roles a sign-in brings are the identity provider's latest word on this
   * user, so the user's other live sessions take them too (a role removed in Entra ID is lost
   * by every session at the user's next sign-in, and with it what those sessions reached).
   */
  async createSession(s: NewConsoleSession): Promise<ConsoleSession> {
    const id = randomUUID();
    const roles = [...s.roles];
    const [, session] = await this.db.$transaction([
      this.db.consoleSession.updateMany({ where: { tenantId: s.tenantId, userId: s.userId, expiresAt: { gt: new Date() } }, data: { roles } }),
      this.db.consoleSession.create({ data: { id, tokenHash: s.tokenHash, tenantId: s.tenantId, userId: s.userId, name: s.name, roles, expiresAt: s.expiresAt } }),
    ]);
    return session;
  }

  /** The live session with this cookie hash, or null (none, or expired). */
  async findSession(tokenHash: string, now = new Date()): Promise<ConsoleSession | null> {
    return this.db.consoleSession.findFirst({ where: { tokenHash, expiresAt: { gt: now } } });
  }

  /** The live session with this id, or null. */
  async findSessionById(id: string, now = new Date()): Promise<ConsoleSession | null> {
    return this.db.consoleSession.findFirst({ where: { id, expiresAt: { gt: now } } });
  }

  /** The worker's sweep: pending logins and sessions past their expiry are deleted. */
  async deleteExpired(now = new Date()): Promise<{ logins: number; sessions: number }> {
    const [logins, sessions] = await this.db.$transaction([
      this.db.consoleLogin.deleteMany({ where: { expiresAt: { lte: now } } }),
      this.db.consoleSession.deleteMany({ where: { expiresAt: { lte: now } } }),
    ]);
    return { logins: logins.count, sessions: sessions.count };
  }
}
