import { isUuid, type Config } from '../../../../libs/core/src';

/**
 * Each cluster's Consul UI has an origin of its own (the UI calls /v1/... at its origin's root):
 * <scheme>://<cluster-id>.<CONSOLE_UI_HOST_SUFFIX>[:port], e.g. http://<id>.ui.localhost:3002
 * locally (browsers resolve *.localhost to loopback), https://<id>.ui.console.example.com behind
 * a wildcard name in production. The port is CONSOLE_UI_PUBLIC_PORT, else the proxy's own.
 */
export class UiOrigins {
  private listeningPort: number | undefined;

  constructor(private readonly config: Pick<Config, 'CONSOLE_UI_HOST_SUFFIX' | 'CONSOLE_UI_SCHEME' | 'CONSOLE_UI_PUBLIC_PORT' | 'UI_PROXY_PORT'>) {}

  /** The port the proxy listens on (known once it listens: tests use port 0). */
  listening(port: number): void {
    this.listeningPort = port;
  }

  get secure(): boolean {
    return this.config.CONSOLE_UI_SCHEME === 'https';
  }

  originFor(clusterId: string): string {
    const port = this.config.CONSOLE_UI_PUBLIC_PORT ?? this.listeningPort ?? this.config.UI_PROXY_PORT;
    const defaultPort = this.secure ? 443 : 80;
    return `${this.config.CONSOLE_UI_SCHEME}://${clusterId}.${this.config.CONSOLE_UI_HOST_SUFFIX}${port === defaultPort ? '' : `:${port}`}`;
  }

  /** The cluster id a request's Host header names, or undefined when it is not one of ours. */
  clusterIdFromHost(host: string | undefined): string | undefined {
    if (!host || host.length > 300) return undefined;
    const name = host.toLowerCase().replace(/:\d{1,5}$/, '');
    const suffix = `.${this.config.CONSOLE_UI_HOST_SUFFIX}`;
    if (!name.endsWith(suffix)) return undefined;
    const id = name.slice(0, -suffix.length);
    return isUuid(id) ? id : undefined;
  }
}
