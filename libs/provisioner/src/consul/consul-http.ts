import * as https from 'node:https';

/**
 * A small JSON client for one cluster's Consul HTTPS API. Trusts only the
 * cluster's CA and verifies the server's name or IP (the server certificates
 * carry IP SANs). Client certificates are not needed: servers run with
 * verify_incoming_https = false.
 */

export interface ConsulRequest {
  /** Server address (IP); the request goes to https://<address>:<port>. */
  address: string;
  port: number;
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
  private readonly agent: https.Agent;

  constructor(caCertPem: string) {
    this.agent = new https.Agent({ ca: caCertPem, keepAlive: true, maxSockets: 8 });
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
    const target = `${req.method} https://${req.address}:${req.port}${req.path}`;
    return new Promise<ConsulRawResponse>((resolve, reject) => {
      const httpReq = https.request(
        {
          host: req.address,
          port: req.port,
          method: req.method,
          path: req.path,
          headers,
          agent: this.agent,
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
    this.agent.destroy();
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
