import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as zlib from 'node:zlib';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { BadGatewayError, DomainError, ForbiddenError, NotFoundError, UnavailableError, ValidationError, errorBody, isDatabaseUnavailable, type Config } from '../../../../libs/core/src';
import { CONSUL_SERVER_PORTS, ServerAgents } from '../../../../libs/provisioner/src';
import { cookieValue, setHostCookie } from '../auth/cookies';
import { bindBrowser } from '../console/browser-binding';
import { ConsoleOrigin, isMutating } from '../console/console-sessions';
import { ERROR_PAGE_CSP, errorPage } from '../console/pages';
import { CONFIG } from '../tokens';
import { UI_ORIGINS, UI_SESSION_GATE } from './consul-ui.tokens';
import type { UiOrigins } from './ui-origins';
import { UI_LOGIN_COOKIE, UI_SESSION_COOKIE, type UiSessionEntry, type UiSessionGate } from './ui-session-gate';
import { API_ANSWER_CSP, apiAnswerHeaders, commonHeaders, isHtml, uiAnswerHeaders } from './ui-headers';

/** The largest UI page whose inline scripts the proxy hashes (Consul 1.8.7's index is 8 KB). */
const MAX_UI_PAGE_BYTES = 1024 * 1024;

/** Request headers never passed to Consul: hop-by-hop ones, and every credential the browser may send (ours is added instead). */
const DROPPED_REQUEST_HEADERS = new Set([
  'connection', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'upgrade', 'host',
  'cookie', 'authorization', 'x-consul-token', 'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto',
]);
const DROPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'set-cookie']);

function isUiPath(path: string): boolean {
  return path === '/ui' || path.startsWith('/ui/') || path.startsWith('/v1/');
}

/**
 * The Consul UI proxy: a listener of its own (UI_PROXY_PORT) in the API process, routed by
 * Host (<cluster-id>.<CONSOLE_UI_HOST_SUFFIX>). `/_sso/callback?code=` redeems a one-time code
 * into a UI session; every other request needs that session (401, or for a page the way back
 * through the console's sign-in) and is passed to the cluster's HTTPS API (verified against the
 * cluster's CA and the server's own address, also when connected through the server's
 * `apiEndpoint`) with the user's own token in X-Consul-Token. Whatever token the browser sends
 * (X-Consul-Token, Authorization, ?token=) is dropped. Plain node:http rather than Fastify: the
 * proxy streams bodies both ways (Consul's blocking queries hold a request open for minutes) and
 * adds as little as possible to each request.
 */
@Injectable()
export class ConsulUiProxy implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly log = new Logger('consul-ui-proxy');
  private server?: http.Server;
  private readonly agents = new Map<string, { caPem: string; agents: ServerAgents }>();

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(UI_ORIGINS) private readonly origins: UiOrigins,
    @Inject(UI_SESSION_GATE) private readonly gate: UiSessionGate,
    private readonly consoleOrigin: ConsoleOrigin,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const server = http.createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => {
      this.handle(req, res).catch((e: unknown) => this.fail(res, e));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.UI_PROXY_PORT, this.config.UI_PROXY_HOST ?? this.config.HOST, () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    this.origins.listening(port);
    this.log.log(`Consul UI proxy on port ${port}: ${this.origins.originFor('<cluster-id>')}/ui/`);
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
    for (const { agents } of this.agents.values()) agents.close();
    this.agents.clear();
  }

  /** The port the proxy listens on. */
  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const clusterId = this.origins.clusterIdFromHost(req.headers.host);
    if (!clusterId) {
      return this.error(req, res, new NotFoundError('unknown_ui_host', `this host is not a cluster's Consul UI; UI hosts are <cluster-id>.${this.config.CONSOLE_UI_HOST_SUFFIX}`));
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', this.origins.originFor(clusterId));
    } catch {
      return this.error(req, res, new ValidationError('bad_url', 'the URL is not valid'));
    }
    const method = req.method ?? 'GET';
    if (url.pathname === '/_sso/start') return this.start(req, res, clusterId);
    if (url.pathname === '/_sso/callback') return this.callback(req, res, url, clusterId);
    // A browser sends Origin with every cross-origin request and every non-GET fetch: a change coming from another origin is refused.
    const origin = req.headers.origin;
    if (isMutating(method) && origin !== undefined && origin !== this.origins.originFor(clusterId)) {
      return this.error(req, res, new ForbiddenError('cross_origin', 'changes through the Consul UI proxy must come from the UI itself'));
    }
    const auth = await this.gate.authenticate(cookieValue(req.headers.cookie, UI_SESSION_COOKIE), clusterId);
    if ('refused' in auth) {
      if ((method === 'GET' || method === 'HEAD') && (req.headers.accept ?? '').includes('text/html')) {
        // A new UI sign-in from this browser: through the console (which signs in if needed) and back here with a new code.
        res.writeHead(302, { ...commonHeaders(), location: '/_sso/start', 'cache-control': 'no-store', ...this.clearCookieIfSent(req) }).end();
        return;
      }
      return this.error(req, res, auth.refused, this.clearCookieIfSent(req));
    }
    if (url.pathname === '/') {
      res.writeHead(302, { ...commonHeaders(), location: '/ui/', 'cache-control': 'no-store' }).end();
      return;
    }
    if (!isUiPath(url.pathname)) return this.error(req, res, new NotFoundError('not_found', 'the Consul UI proxy serves /ui/ and /v1/ only'));
    url.searchParams.delete('token');
    this.forward(req, res, auth.entry, `${url.pathname}${url.search}`, 0);
  }

  /**
   * The start of a UI sign-in on this origin: the browser gets this origin's binding cookie and
   * goes to the console, which makes a code bound to it (its hash in `bind`) and sends the
   * browser to /_sso/callback. Nothing else happens here: the console checks who is asking.
   */
  private start(req: http.IncomingMessage, res: http.ServerResponse, clusterId: string): void {
    if (req.method !== 'GET') return this.error(req, res, new ValidationError('method_not_allowed', '/_sso/start takes GET'));
    const binding = bindBrowser(req.headers.cookie, UI_LOGIN_COOKIE);
    res
      .writeHead(302, {
        ...commonHeaders(),
        location: `${this.consoleOrigin.value}/sso/clusters/${clusterId}?bind=${binding.hash}`,
        'set-cookie': binding.setCookie,
        'cache-control': 'no-store',
      })
      .end();
  }

  private async callback(req: http.IncomingMessage, res: http.ServerResponse, url: URL, clusterId: string): Promise<void> {
    if (req.method !== 'GET') return this.error(req, res, new ValidationError('method_not_allowed', '/_sso/callback takes GET'));
    const codes = url.searchParams.getAll('code');
    const { secret, maxAgeS } = await this.gate.signIn(codes.length === 1 ? codes[0] : undefined, clusterId, req.headers.cookie);
    res
      .writeHead(302, {
        ...commonHeaders(),
        location: '/ui/',
        'set-cookie': setHostCookie(UI_SESSION_COOKIE, secret, { maxAgeS, sameSite: 'Lax' }),
        'cache-control': 'no-store',
        'referrer-policy': 'no-referrer',
      })
      .end();
  }

  /** Passes the request to one of the cluster's servers with the user's token, streaming both ways. */
  private forward(req: http.IncomingMessage, res: http.ServerResponse, entry: UiSessionEntry, path: string, attempt: number): void {
    const { address, via } = entry.servers[attempt % entry.servers.length]!;
    const headers: http.OutgoingHttpHeaders = {};
    const hopByHop = new Set((typeof req.headers.connection === 'string' ? req.headers.connection : '').toLowerCase().split(',').map((s) => s.trim()));
    for (const [k, v] of Object.entries(req.headers)) if (!DROPPED_REQUEST_HEADERS.has(k) && !hopByHop.has(k) && v !== undefined) headers[k] = v;
    // A UI page's CSP names its inline scripts' hashes, read from its body: a 304 would carry a CSP
    // without them, and a browser updates the cached page's headers from a 304.
    if (!path.startsWith('/v1/') && String(req.headers.accept ?? '').includes('text/html')) {
      delete headers['if-modified-since'];
      delete headers['if-none-match'];
    }
    headers['x-consul-token'] = entry.secretId;
    headers.host = `${address}:${CONSUL_SERVER_PORTS.https}`;
    const connect = this.agentsFor(entry).connect(address, CONSUL_SERVER_PORTS.https, via);
    const upstream = https.request({ ...connect, method: req.method, path, headers }, (up) => {
      if (up.statusCode === 403) this.gate.forget(entry); // the token may have been revoked: check the session again next time
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(up.headers)) if (!DROPPED_RESPONSE_HEADERS.has(k) && v !== undefined) out[k] = v;
      const status = up.statusCode ?? 502;
      if (path.startsWith('/v1/')) {
        res.writeHead(status, apiAnswerHeaders(out));
        up.pipe(res);
      } else if (isHtml(out) && req.method !== 'HEAD') {
        this.sendUiPage(res, up, status, out);
      } else {
        res.writeHead(status, uiAnswerHeaders(out, this.consoleOrigin.value));
        up.pipe(res);
      }
    });
    const bodyless = req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined;
    upstream.on('error', (e: NodeJS.ErrnoException) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // A server that refuses connections (down, restarting): a request without a body goes to the next one.
      if (bodyless && e.code === 'ECONNREFUSED' && attempt + 1 < entry.servers.length) {
        this.forward(req, res, entry, path, attempt + 1);
        return;
      }
      this.log.warn({ msg: 'Consul did not answer the proxied request', clusterId: entry.clusterId, err: e.code ?? e.message });
      this.error(req, res, new BadGatewayError('cluster_unavailable', "the cluster's Consul API did not answer; try again shortly"));
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    if (bodyless) upstream.end();
    else req.pipe(upstream);
  }

  /**
   * A UI page: read whole (decompressed), so that its CSP can name the hashes of the inline
   * scripts it ships, then sent as is.
   */
  private sendUiPage(res: http.ServerResponse, up: http.IncomingMessage, status: number, headers: http.OutgoingHttpHeaders): void {
    const chunks: Buffer[] = [];
    let size = 0;
    up.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_UI_PAGE_BYTES) {
        up.destroy();
        return;
      }
      chunks.push(c);
    });
    up.on('error', () => res.destroy());
    up.on('end', () => {
      let body = Buffer.concat(chunks);
      const encoding = String(headers['content-encoding'] ?? '').trim().toLowerCase();
      try {
        if (encoding === 'gzip') body = zlib.gunzipSync(body);
        else if (encoding === 'br') body = zlib.brotliDecompressSync(body);
        else if (encoding === 'deflate') body = zlib.inflateSync(body);
      } catch {
        this.error(res.req, res, new BadGatewayError('cluster_unavailable', "the cluster's Consul UI answered a page that could not be read; try again shortly"));
        return;
      }
      const { 'content-encoding': _encoding, 'content-length': _length, 'transfer-encoding': _transfer, ...rest } = headers;
      res.writeHead(status, { ...uiAnswerHeaders(rest, this.consoleOrigin.value, body.toString('utf8')), 'content-length': String(body.length) }).end(body);
    });
    up.on('close', () => {
      if (size > MAX_UI_PAGE_BYTES && !res.headersSent) this.error(res.req, res, new BadGatewayError('cluster_unavailable', "the cluster's Consul UI answered a page too large to serve"));
    });
  }

  private agentsFor(entry: UiSessionEntry): ServerAgents {
    const cached = this.agents.get(entry.clusterId);
    if (cached && cached.caPem === entry.caPem) return cached.agents;
    cached?.agents.close();
    const agents = new ServerAgents(entry.caPem, 64);
    this.agents.set(entry.clusterId, { caPem: entry.caPem, agents });
    return agents;
  }

  private clearCookieIfSent(req: http.IncomingMessage): Record<string, string> {
    return cookieValue(req.headers.cookie, UI_SESSION_COOKIE) === undefined ? {} : { 'set-cookie': setHostCookie(UI_SESSION_COOKIE, '', { maxAgeS: 0, sameSite: 'Lax' }) };
  }

  /** The API's error shape, or a page for a browser; a way back to the console for the sign-in's failures. */
  private error(req: http.IncomingMessage, res: http.ServerResponse, e: DomainError, extra: Record<string, string> = {}): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const clusterId = this.origins.clusterIdFromHost(req.headers.host);
    const headers = { ...commonHeaders(), 'cache-control': 'no-store', ...extra };
    if ((req.headers.accept ?? '').includes('text/html')) {
      const links = [
        ...(clusterId ? [{ href: `${this.consoleOrigin.value}/sso/clusters/${clusterId}`, label: 'Open the Consul UI again' }] : []),
        { href: `${this.consoleOrigin.value}/`, label: 'Back to the console' },
      ];
      res.writeHead(e.status, { ...headers, 'content-type': 'text/html; charset=utf-8', 'content-security-policy': ERROR_PAGE_CSP }).end(errorPage(e.status, e.code, e.message, links));
      return;
    }
    const body = JSON.stringify(errorBody(e));
    res.writeHead(e.status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-security-policy': API_ANSWER_CSP }).end(body);
  }

  private fail(res: http.ServerResponse, e: unknown): void {
    const req = res.req;
    if (e instanceof DomainError) return this.error(req, res, e);
    if (isDatabaseUnavailable(e)) return this.error(req, res, new UnavailableError('database_unavailable', 'the control plane database cannot be reached right now; try again shortly'), { 'retry-after': '5' });
    this.log.error({ msg: 'Consul UI proxy failed', err: e instanceof Error ? e.message : String(e) });
    this.error(req, res, new InternalError('internal', 'internal error'));
  }
}

class InternalError extends DomainError {
  readonly status = 500;
}
