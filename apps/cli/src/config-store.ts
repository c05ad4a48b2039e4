import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** What `hcs login` saves: the API to call and the token to call it with. */
export interface StoredLogin {
  api: string;
  token: string;
}

export const DEFAULT_API = 'http://127.0.0.1:3000';

type Env = Readonly<Record<string, string | undefined>>;

/** There is no token to call the API with. */
export class NotLoggedIn extends Error {
  constructor() {
    super("not logged in: run 'hcs login --token -' (token on stdin) or set HCS_TOKEN");
  }
}

export function configPath(env: Env): string {
  if (env.HCS_CONFIG) return path.resolve(env.HCS_CONFIG);
  const base = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return path.join(base, 'hcs', 'config.json');
}

export function readStoredLogin(env: Env): StoredLogin | null {
  const file = configPath(env);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const v = JSON.parse(text) as Partial<StoredLogin>;
    if (typeof v.api === 'string' && typeof v.token === 'string') return { api: v.api, token: v.token };
  } catch {
    /* reported below */
  }
  throw new Error(`${file} is not a saved login; run 'hcs login' again`);
}

/** Writes the login readable by its owner only: a new folder 0700, the file 0600 (replaced whole, never half-written). */
export function storeLogin(env: Env, login: StoredLogin): string {
  const file = configPath(env);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, `${JSON.stringify(login, null, 2)}\n`, { mode: 0o600 });
  fs.chmodSync(temp, 0o600);
  fs.renameSync(temp, file);
  return file;
}

/** Removes the saved login; false when there was none. */
export function forgetLogin(env: Env): boolean {
  try {
    fs.unlinkSync(configPath(env));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** The API and token to use: HCS_API / HCS_TOKEN first, then the saved login. */
export function resolveLogin(env: Env): StoredLogin {
  const stored = env.HCS_API && env.HCS_TOKEN ? null : readStoredLogin(env);
  const api = env.HCS_API || stored?.api || DEFAULT_API;
  const token = env.HCS_TOKEN?.trim() || stored?.token;
  if (!token) throw new NotLoggedIn();
  return { api, token };
}
