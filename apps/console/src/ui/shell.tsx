import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef } from 'react';
import { NavLink, Outlet, useLocation } from 'react-router';
import { setCsrfToken } from '../api/client';
import { keys, useSession, useSignOut } from '../api/queries';
import type { Session } from '../api/types';
import { SignInPage } from '../pages/sign-in';
import { ErrorState, Loading } from './states';
import { SessionContext } from './session';

/** Signed out: the sign-in page, whatever the path (it brings the user back there). Signed in: the console. */
export function Shell() {
  const session = useSession();
  if (session.isPending) return <main id="main" className="page"><Loading what="your session" /></main>;
  if (session.isError) return <main id="main" className="page"><ErrorState error={session.error} what="your session" onRetry={() => void session.refetch()} /></main>;
  if (!session.data) return <SignInPage />;
  return (
    <SessionContext.Provider value={session.data}>
      <Layout session={session.data} />
    </SessionContext.Provider>
  );
}

function Layout({ session }: { session: Session }) {
  const qc = useQueryClient();
  const signOut = useSignOut();
  const location = useLocation();
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  // After a navigation, focus goes to the new page (not left on a link that is gone), and a
  // screen reader starts reading there.
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    main.current?.focus();
  }, [location.pathname]);
  return (
    <>
      <a className="skip-link" href="#main">Skip to content</a>
      <header className="topbar">
        <NavLink to="/clusters" className="brand">Managed Consul</NavLink>
        <nav aria-label="Main">
          <ul>
            <li><NavLink to="/clusters" end>Clusters</NavLink></li>
            <li><NavLink to="/clusters/new">Create a cluster</NavLink></li>
            {session.operator ? <li><NavLink to="/fleet">Fleet (SRE)</NavLink></li> : null}
          </ul>
        </nav>
        <div className="user">
          <span className="user-name">{session.user.name}</span>
          <span className="user-meta">tenant {session.user.tenantId.slice(0, 8)}… · {session.user.roles.join(', ') || 'no role'}</span>
          <button
            type="button"
            className="button button-quiet"
            disabled={signOut.isPending}
            onClick={() =>
              signOut.mutate(undefined, {
                onSettled: () => {
                  // Signed out (or the session was already gone): forget everything read with it.
                  setCsrfToken(null);
                  qc.setQueryData(keys.session, null);
                  qc.removeQueries({ predicate: (q) => q.queryKey[0] !== keys.session[0] });
                },
              })
            }
          >
            {signOut.isPending ? 'Signing out…' : 'Sign out'}
          </button>
        </div>
      </header>
      <main id="main" className="page" tabIndex={-1} ref={main}>
        <Outlet />
      </main>
    </>
  );
}
