import { useLocation } from 'react-router';
import { pageTitle } from '../ui/session';

/** Signed out: one button to the identity provider (OpenID Connect, code flow with PKCE, on the server). */
export function SignInPage() {
  const location = useLocation();
  const returnTo = location.pathname === '/' ? '/clusters' : `${location.pathname}${location.search}`;
  return (
    <main id="main" className="signin">
      <title>{pageTitle('Sign in')}</title>
      <div className="signin-card">
        <p className="brand brand-large" aria-hidden="true">Managed Consul</p>
        <h1>Sign in to your clusters</h1>
        <p>
          Create Consul clusters secured by default (TLS, ACLs with default-deny, gossip encryption), then run them from here:
          snapshots, upgrades, scaling, and one click into each cluster’s Consul UI.
        </p>
        {/* A link, not a form: the page's CSP (form-action 'self') would stop a form's redirect to the identity provider. */}
        <a className="button button-primary button-large" href={`/auth/login?returnTo=${encodeURIComponent(returnTo)}`}>Sign in with your organization account</a>
        <p className="muted">You sign in with your Microsoft Entra ID account; the console keeps only a session cookie, never your tokens.</p>
      </div>
    </main>
  );
}
