import { useMutation, useQuery, useQueryClient, type Query } from '@tanstack/react-query';
import { ApiError, call, del, get, patch, post, put, setCsrfToken } from './client';
import {
  ACTIVE_CLUSTER_STATES, ENDED_OPERATION_STATES, type AuditEvent, type AuditExport, type ClientConfig, type Cluster, type CreatedToken, type Federation, type FederationToken, type FleetCluster, type Operation, type PendingToken,
  type Region, type Session, type Snapshot, type TierCatalog, type Version, type Wave,
} from './types';

/** While something is changing, poll quickly; otherwise look again now and then (others may change things too). */
const FAST_MS = 1500;
const SLOW_MS = 15_000;
function pollWhile<T>(busy: (data: T) => boolean) {
  return (q: Query<T, ApiError>) => (q.state.data === undefined ? false : busy(q.state.data) ? FAST_MS : SLOW_MS);
}

export const keys = {
  session: ['session'] as const,
  clusters: ['clusters'] as const,
  cluster: (id: string) => ['cluster', id] as const,
  operations: (id: string) => ['cluster', id, 'operations'] as const,
  events: (id: string) => ['cluster', id, 'events'] as const,
  snapshots: (id: string) => ['cluster', id, 'snapshots'] as const,
  federation: (id: string) => ['cluster', id, 'federation'] as const,
  auditExport: (id: string) => ['cluster', id, 'audit-export'] as const,
  operation: (id: string) => ['operation', id] as const,
  fleet: (filters: Record<string, string>) => ['fleet', filters] as const,
  wave: (id: string) => ['wave', id] as const,
};

/** The signed-in session, or null when there is none (401). */
export function useSession() {
  return useQuery<Session | null, ApiError>({
    queryKey: keys.session,
    queryFn: async () => {
      try {
        const s = await get<Session>('/auth/session');
        setCsrfToken(s.csrfToken);
        return s;
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) {
          setCsrfToken(null);
          return null;
        }
        throw e;
      }
    },
    staleTime: 60_000,
    refetchOnWindowFocus: true,
  });
}

export function useSignOut() {
  return useMutation<unknown, ApiError>({ mutationFn: () => call('POST', '/auth/logout') });
}

export const useRegions = () => useQuery<Region[], ApiError>({ queryKey: ['catalog', 'regions'], queryFn: async () => (await get<{ regions: Region[] }>('/v1/regions')).regions, staleTime: Infinity });
export const useVersions = () => useQuery<Version[], ApiError>({ queryKey: ['catalog', 'versions'], queryFn: async () => (await get<{ versions: Version[] }>('/v1/versions')).versions, staleTime: 300_000 });
export const useTiers = () => useQuery<TierCatalog, ApiError>({ queryKey: ['catalog', 'tiers'], queryFn: () => get<TierCatalog>('/v1/tiers'), staleTime: Infinity });

export function useClusters() {
  return useQuery<Cluster[], ApiError>({
    queryKey: keys.clusters,
    queryFn: async () => (await get<{ clusters: Cluster[] }>('/v1/clusters')).clusters,
    refetchInterval: pollWhile((cs: Cluster[]) => cs.some((c) => ACTIVE_CLUSTER_STATES.has(c.state))),
  });
}

export function useCluster(id: string) {
  return useQuery<Cluster, ApiError>({
    queryKey: keys.cluster(id),
    queryFn: () => get<Cluster>(`/v1/clusters/${encodeURIComponent(id)}`),
    refetchInterval: pollWhile((c: Cluster) => ACTIVE_CLUSTER_STATES.has(c.state)),
  });
}

export function useOperation(id: string) {
  return useQuery<Operation, ApiError>({
    queryKey: keys.operation(id),
    queryFn: () => get<Operation>(`/v1/operations/${encodeURIComponent(id)}`),
    refetchInterval: (q) => (q.state.data && ENDED_OPERATION_STATES.has(q.state.data.state) ? false : 1000),
  });
}

export function useClusterOperations(id: string) {
  return useQuery<Operation[], ApiError>({
    queryKey: keys.operations(id),
    queryFn: async () => (await get<{ operations: Operation[] }>(`/v1/clusters/${encodeURIComponent(id)}/operations`)).operations,
    refetchInterval: pollWhile((ops: Operation[]) => ops.some((o) => !ENDED_OPERATION_STATES.has(o.state))),
  });
}

export function useClusterEvents(id: string, busy: boolean) {
  return useQuery<AuditEvent[], ApiError>({
    queryKey: keys.events(id),
    queryFn: async () => (await get<{ events: AuditEvent[] }>(`/v1/clusters/${encodeURIComponent(id)}/events`)).events,
    refetchInterval: busy ? FAST_MS : SLOW_MS,
  });
}

export function useSnapshots(id: string) {
  return useQuery<Snapshot[], ApiError>({
    queryKey: keys.snapshots(id),
    queryFn: async () => (await get<{ snapshots: Snapshot[] }>(`/v1/clusters/${encodeURIComponent(id)}/snapshots`)).snapshots,
    refetchInterval: pollWhile((ss: Snapshot[]) => ss.some((s) => s.state === 'Pending' || s.state === 'Deleting')),
  });
}

/** The cluster's federation; polled quickly while a member is being created, changed or deleted. */
export function useFederation(id: string) {
  return useQuery<Federation, ApiError>({
    queryKey: keys.federation(id),
    queryFn: () => get<Federation>(`/v1/clusters/${encodeURIComponent(id)}/federation`),
    refetchInterval: pollWhile((f: Federation) => [f.primary, ...f.secondaries].some((m) => m !== null && ACTIVE_CLUSTER_STATES.has(m.state))),
  });
}

/** The cluster's audit export; polled quickly while it has events to write or is retrying. */
export function useAuditExport(id: string) {
  return useQuery<AuditExport, ApiError>({
    queryKey: keys.auditExport(id),
    queryFn: () => get<AuditExport>(`/v1/clusters/${encodeURIComponent(id)}/audit-export`),
    refetchInterval: pollWhile((a: AuditExport) => a.status.state === 'exporting' || a.status.state === 'retrying'),
  });
}

export const auditExportApi = {
  put: (id: string, body: { containerUrl: string; managedIdentity?: boolean }) => put<AuditExport>(`/v1/clusters/${encodeURIComponent(id)}/audit-export`, body),
  off: (id: string) => del<AuditExport>(`/v1/clusters/${encodeURIComponent(id)}/audit-export`),
};

export function useFleet(filters: Record<string, string>) {
  const qs = new URLSearchParams(Object.entries(filters).filter(([, v]) => v !== '')).toString();
  return useQuery<FleetCluster[], ApiError>({
    queryKey: keys.fleet(filters),
    queryFn: async () => (await get<{ clusters: FleetCluster[] }>(`/v1/admin/clusters${qs ? `?${qs}` : ''}`)).clusters,
    refetchInterval: pollWhile((cs: FleetCluster[]) => cs.some((c) => ACTIVE_CLUSTER_STATES.has(c.state))),
  });
}

export function useWave(id: string) {
  return useQuery<Wave, ApiError>({
    queryKey: keys.wave(id),
    queryFn: () => get<Wave>(`/v1/admin/waves/${encodeURIComponent(id)}`),
    refetchInterval: (q) => (q.state.data && q.state.data.state !== 'Running' ? false : FAST_MS),
  });
}

/**
 * A change to one cluster: afterwards everything shown about it is read again, so the new
 * operation appears at once and is then polled until it ends. `secret`: the answer holds a
 * secret shown once, so the mutation cache drops it as soon as nothing shows it (reset or unmount).
 */
export function useClusterChange<V, R = unknown>(clusterId: string, fn: (v: V) => Promise<R>, opts: { secret?: boolean } = {}) {
  const qc = useQueryClient();
  return useMutation<R, ApiError, V>({
    mutationFn: fn,
    ...(opts.secret ? { gcTime: 0 } : {}),
    onSettled: async () => {
      await Promise.all([
        qc.invalidateQueries({ queryKey: ['cluster', clusterId] }),
        qc.invalidateQueries({ queryKey: keys.clusters }),
      ]);
    },
  });
}

const base = (id: string) => `/v1/clusters/${encodeURIComponent(id)}`;
export const clusterApi = {
  create: (body: unknown, idempotencyKey: string) => post<{ cluster: Cluster; operation: Operation }>('/v1/clusters', body, { 'idempotency-key': idempotencyKey }),
  delete: (id: string) => del<{ operation: Operation }>(base(id)),
  update: (id: string, body: unknown) => patch<Cluster | { cluster: Cluster; operation: Operation }>(base(id), body),
  upgrade: (id: string, consulVersion: string) => post<{ operation: Operation }>(`${base(id)}/upgrade`, { consulVersion }),
  clientConfig: (id: string) => get<ClientConfig>(`${base(id)}/client-config`),
  createToken: (id: string, description: string) => post<CreatedToken | PendingToken>(`${base(id)}/tokens`, description ? { description } : {}),
  /** The secret of a token made after the API stopped waiting: a POST (it is handed out once), so the session's CSRF token goes with it. */
  collectToken: (operationId: string) => post<CreatedToken>(`/v1/operations/${encodeURIComponent(operationId)}/token`),
  /** A single-use federation token of a Running primary (or a cluster on its own): its secret is in this answer only. */
  createFederationToken: (id: string) => post<FederationToken>(`${base(id)}/federation-token`),
  takeSnapshot: (id: string, name: string) => post<{ snapshot: Snapshot; operation: Operation }>(`${base(id)}/snapshots`, name ? { name } : {}),
  renameSnapshot: (id: string, sid: string, name: string) => patch<Snapshot>(`${base(id)}/snapshots/${encodeURIComponent(sid)}`, { name }),
  deleteSnapshot: (id: string, sid: string) => del<unknown>(`${base(id)}/snapshots/${encodeURIComponent(sid)}`),
  restoreSnapshot: (id: string, sid: string, takeSnapshot: boolean) => post<{ operation: Operation }>(`${base(id)}/snapshots/${encodeURIComponent(sid)}/restore`, { takeSnapshot }),
  cancelOperation: (opId: string) => post<Operation>(`/v1/operations/${encodeURIComponent(opId)}/cancel`),
  startWave: (body: unknown) => post<Wave>('/v1/admin/waves', body),
};
