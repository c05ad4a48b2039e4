import { createContext, useContext } from 'react';
import type { Session } from '../api/types';

export const SessionContext = createContext<Session | null>(null);

export function useSignedIn(): Session & { canWrite: boolean } {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSignedIn outside the signed-in console');
  return { ...s, canWrite: s.user.roles.includes('Clusters.ReadWrite') };
}

/** The page's title, for the tab and for screen readers announcing navigation. */
export function pageTitle(title: string): string {
  return `${title} · Managed Consul`;
}
