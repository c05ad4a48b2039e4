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

  request(req: ConsulRequest): Promise<ConsulResponse> {
    const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
    const headers: Record<string, string | number> = { Accept: 'application/json' };
    if (req.token !== undefined) headers['X-Consul-Token'] = req.token;
    if (payload) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = payload.length;
    }
    const target = `${req.method} https://${req.address}:${req.port}${req.path}`;
    return new Promise<ConsulResponse>((resolve, reject) => {
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
            if (size > MAX_RESPONSE_BYTES) {
              res.destroy(new Error(`${target}: response larger than ${MAX_RESPONSE_BYTES} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, body: parseBody(text, res.headers['content-type']) });
          });
        },
      );
      httpReq.on('timeout', () => httpReq.destroy(new Error(`${target}: timed out`)));
      httpReq.on('error', (err) => reject(new Error(`${target}: ${err.message}`, { cause: err })));
      httpReq.end(payload);
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

/** A short, single-line description of a response body for error messages. */
export function describeBody(body: unknown): string {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const line = (text ?? '').replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
