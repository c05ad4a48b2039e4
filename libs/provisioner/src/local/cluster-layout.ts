import * as path from 'node:path';

/**
 * Where a `local` cluster's files live:
 * `<clustersDir>/<clusterId>/server-<i>/{config/, data/, tls/, consul.log}`.
 */

export interface ServerPaths {
  serverDir: string;
  configDir: string;
  configFile: string;
  dataDir: string;
  tlsDir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  logFile: string;
}

const CLUSTER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export class ClusterLayout {
  readonly clustersDir: string;

  constructor(clustersDir: string) {
    // Absolute, normalised: it is matched verbatim against process command lines.
    this.clustersDir = path.resolve(clustersDir);
  }

  clusterDir(clusterId: string): string {
    assertClusterId(clusterId);
    return path.join(this.clustersDir, clusterId);
  }

  server(clusterId: string, index: number): ServerPaths {
    if (!Number.isInteger(index) || index < 0) throw new Error(`Invalid server index ${index}`);
    const serverDir = path.join(this.clusterDir(clusterId), `server-${index}`);
    const configDir = path.join(serverDir, 'config');
    const tlsDir = path.join(serverDir, 'tls');
    return {
      serverDir,
      configDir,
      configFile: path.join(configDir, 'server.json'),
      dataDir: path.join(serverDir, 'data'),
      tlsDir,
      caFile: path.join(tlsDir, 'ca.pem'),
      certFile: path.join(tlsDir, 'server.pem'),
      keyFile: path.join(tlsDir, 'server-key.pem'),
      logFile: path.join(serverDir, 'consul.log'),
    };
  }

  /** The `-config-dir=` argument of server `index`'s process. */
  configDirArgument(clusterId: string, index: number): string {
    return `-config-dir=${this.server(clusterId, index).configDir}`;
  }

  /**
   * The server index a `-config-dir=` argument belongs to, if it is one of
   * this cluster's server config dirs; undefined otherwise.
   */
  serverIndexOfConfigDirArgument(clusterId: string, arg: string): number | undefined {
    const prefix = `-config-dir=${this.clusterDir(clusterId)}${path.sep}server-`;
    if (!arg.startsWith(prefix)) return undefined;
    const match = /^(\d+)\/config\/?$/.exec(arg.slice(prefix.length));
    return match ? Number(match[1]) : undefined;
  }
}

/** Cluster ids become directory names that are later removed recursively. */
export function assertClusterId(clusterId: string): void {
  if (!CLUSTER_ID.test(clusterId) || clusterId.includes('..')) {
    throw new Error(`Invalid cluster id "${clusterId}"`);
  }
}
