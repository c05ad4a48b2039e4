import * as https from 'node:https';
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import { parseEndpoint, type Endpoint } from '../target';

/**
 * A small JSON client for one cluster's Consul HTTPS API. Trusts only the
 * cluster's CA and verifies the server's name or IP (the server certificates
 * carry IP SANs). Client certificates are not needed: servers run with
 * verify_incoming_https = false.
 */

/**
 * One server's HTTPS API as the control plane reaches it: the server's own address (what its
 * certificate names) and, where that address is not to be connected to (customers' networks
 * overlap), the endpoint the control plane connects to instead.
 */
export interface ServerHttps {
  address: string;
  via?: Endpoint;
}

/** A server row's HTTPS API: `apiEndpoint` (host:port) when set, else the server's address. */
export function serverHttps(row: { address: string; apiEndpoint?: string | null }): ServerHttps {
  return row.apiEndpoint ? { address: row.address, via: parseEndpoint(row.apiEndpoint) } : { address: row.address };
}

/** ` via <host>:<port>` for messages about a connection through a via (they name both); empty without one. */
export function viaText(via?: Endpoint): string {
  return via ? ` via ${via.host}:${via.port}` : '';
}

/**
 * TLS options that verify a certificate against the server's own address whatever host the
 * connection goes to (a via): CA trust is unchanged, and an IP is never sent as SNI.
 */
export function identityOf(address: string): Pick<tls.ConnectionOptions, 'servername' | 'checkServerIdentity'> {
  return { servername: isIP(address) ? '' : address, checkServerIdentity: (_host, cert) => tls.checkServerIdentity(address, cert) };
}

/**
 * Kept-alive HTTPS connections to one cluster's servers, trusting its CA alone. An agent reuses a
 * socket by the host and port it connects to, not by the identity it verified: so a connection
 * through a via gets a pool of its own per server and via, and a socket verified for one server
 * never carries a request meant for another (or for the same server through another via).
 */
export class ServerAgents {
  private readonly direct: https.Agent;
  private readonly routed = new Map<string, https.Agent>();

  constructor(private readonly caPem: string, private readonly maxSockets: number) {
    this.direct = new https.Agent({ ca: caPem, keepAlive: true, maxSockets });
  }

  /** Where a request to `address:port` connects, and the pool that verifies it as `address`. */
  connect(address: string, port: number, via?: Endpoint): { host: string; port: number; agent: https.Agent } {
    if (!via) return { host: address, port, agent: this.direct };
    const key = `${address} ${via.host}:${via.port}`;
    let agent = this.routed.get(key);
    if (!agent) {
      agent = new https.Agent({ ca: this.caPem, keepAlive: true, maxSockets: this.maxSockets, ...identityOf(address) });
      this.routed.set(key, agent);
    }
    return { host: via.host, port: via.port, agent };
  }

  close(): void {
    this.direct.destroy();
    for (const agent of this.routed.values()) agent.destroy();
    this.routed.clear();
  }
}

export interface ConsulRequest {
  /** Server address (IP), what its certificate names; the request goes to https://<address>:<port>. */
  address: string;
  port: number;
  /** Where to connect instead of address:port (the certificate is still verified against `address`). */
  via?: Endpoint;
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** Path with query, e.g. `/v1/kv/foo?cas=0`. */
  path: string;
  /** Sent as X-Consul-Token; never logged or included in errors. */
  token?: string;
  body?: unknown;
  timeoutMs?: number;
}

export interface ConsulRawRequest extends Omit<ConsulRequest, 'body'> {
  rawBody?: Buffer;
  contentType?: string;
  accept?: string;
  /** Largest answer accepted (default 16 MiB). */
  maxBytes?: number;
}

export interface ConsulRawResponse {
  status: number;
  headers: import('node:http').IncomingHttpHeaders;
  data: Buffer;
}

export interface ConsulResponse {
  status: number;
  /** Parsed JSON if the response is JSON, else the raw text. */
  body: unknown;
}

const DEFAULT_TIMEOUT_MS = 5_000;
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

export class ConsulHttpClient {
  private readonly agents: ServerAgents;

  constructor(caCertPem: string) {
    this.agents = new ServerAgents(caCertPem, 8);
  }

  async request(req: ConsulRequest): Promise<ConsulResponse> {
    const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
    const res = await this.requestRaw({ ...req, rawBody: payload, contentType: payload ? 'application/json' : undefined, accept: 'application/json' });
    return { status: res.status, body: parseBody(res.data.toString('utf8'), res.headers['content-type'] as string | undefined) };
  }

  /** Bytes in, bytes out: snapshots (`GET`/`PUT /v1/snapshot`) are gzipped archives, not JSON. */
  requestRaw(req: ConsulRawRequest): Promise<ConsulRawResponse> {
    const headers: Record<string, string | number> = { Accept: req.accept ?? '*/*' };
    if (req.token !== undefined) headers['X-Consul-Token'] = req.token;
    if (req.rawBody) {
      headers['Content-Type'] = req.contentType ?? 'application/octet-stream';
      headers['Content-Length'] = req.rawBody.length;
    }
    const limit = req.maxBytes ?? MAX_RESPONSE_BYTES;
    const target = `${req.method} https://${req.address}:${req.port}${req.path}${viaText(req.via)}`;
    // The Host header names the server as a direct request would, whatever is connected to.
    if (req.via) headers['Host'] = `${req.address}:${req.port}`;
    const connect = this.agents.connect(req.address, req.port, req.via);
    return new Promise<ConsulRawResponse>((resolve, reject) => {
      const httpReq = https.request(
        {
          ...connect,
          method: req.method,
          path: req.path,
          headers,
          timeout: req.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > limit) {
              res.destroy(new Error(`${target}: response larger than ${limit} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.on('error', reject);
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, data: Buffer.concat(chunks) }));
        },
      );
      httpReq.on('timeout', () => httpReq.destroy(new Error(`${target}: timed out`)));
      httpReq.on('error', (err) => reject(new Error(`${target}: ${err.message}`, { cause: err })));
      httpReq.end(req.rawBody);
    });
  }

  /** Closes pooled connections. */
  close(): void {
    this.agents.close();
  }
}

function parseBody(text: string, contentType: string | undefined): unknown {
  if (text === '') return undefined;
  if (contentType?.includes('application/json') || /^[[{"]|^(true|false|null)$/.test(text.trim())) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

/** Consul 1.8 answers an unknown token, policy or accessor id with 403 "ACL not found" (or a 404). */
export function isAclNotFound(res: ConsulResponse): boolean {
  return res.status === 404 || (res.status === 403 && /ACL not found/i.test(describeBody(res.body)));
}

/** A short, single-line description of a response body for error messages. */
export function describeBody(body: unknown): string {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const line = (text ?? '').replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
