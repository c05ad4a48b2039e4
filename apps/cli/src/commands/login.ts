import { command, type CommandContext } from '../command';
import { DEFAULT_API, configPath, forgetLogin, readStoredLogin, storeLogin } from '../config-store';
import { firstLine } from '../stdin';

/** Who the token says the caller is, to confirm the login without showing the token. */
function describeToken(token: string): string | null {
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    const who = claims.preferred_username ?? claims.name ?? claims.oid;
    const parts = [typeof who === 'string' ? `as ${who}` : null, typeof claims.tid === 'string' ? `in tenant ${claims.tid}` : null];
    if (typeof claims.exp === 'number') parts.push(`token valid until ${new Date(claims.exp * 1000).toISOString()}`);
    return parts.filter(Boolean).join(', ') || null;
  } catch {
    return null;
  }
}

function apiUrl(ctx: CommandContext): string {
  const raw = ctx.args.string('api') ?? ctx.io.env.HCS_API ?? readStoredLogin(ctx.io.env)?.api ?? DEFAULT_API;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw ctx.args.fail(`--api must be a URL such as ${DEFAULT_API}, not '${raw}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw ctx.args.fail('--api must be an http:// or https:// URL');
  return raw.replace(/\/+$/, '');
}

function isLoopback(api: string): boolean {
  const host = new URL(api).hostname;
  return host === 'localhost' || host === '[::1]' || host.startsWith('127.');
}

export const login = command({
  name: 'login',
  summary: 'Save the API address and an access token for the next commands',
  options: {
    token: { type: 'string', value: 'JWT', required: true, description: "an Entra ID access token for the API; '-' reads it from stdin (keeps it out of the process list)" },
    api: { type: 'string', value: 'URL', description: `the API's address (default: HCS_API, the saved one, or ${DEFAULT_API})` },
  },
  async run(ctx) {
    const given = ctx.args.required('token');
    const token = (given === '-' ? await firstLine(ctx.io.stdin ?? process.stdin) : given).trim();
    if (!token || /\s/.test(token)) throw ctx.args.fail('the token must be one word (a JWT) with no spaces');
    const api = apiUrl(ctx);
    const file = storeLogin(ctx.io.env, { api, token });
    const who = describeToken(token);
    ctx.output.result({ api, config: file }, () => {
      ctx.output.line(`Logged in to ${api}${who ? ` ${who}` : ''}.`);
      ctx.output.line(`Saved in ${file} (readable by you only).`);
    });
    if (!api.startsWith('https:') && !isLoopback(api)) ctx.io.stderr.write(`hcs: warning: ${api} is not HTTPS; the token will cross the network unencrypted\n`);
  },
});

export const logout = command({
  name: 'logout',
  summary: 'Forget the saved API address and token',
  async run(ctx) {
    const file = configPath(ctx.io.env);
    const removed = forgetLogin(ctx.io.env);
    ctx.output.result({ removed, config: file }, () => ctx.output.line(removed ? `Logged out (removed ${file}).` : 'Not logged in; nothing to remove.'));
    if (ctx.io.env.HCS_TOKEN) ctx.io.stderr.write('hcs: note: HCS_TOKEN is still set in the environment and will keep being used\n');
  },
});
