import { Link } from 'react-router';
import { EmptyState } from '../ui/states';
import { pageTitle } from '../ui/session';

export function NotFoundPage() {
  return (
    <>
      <title>{pageTitle('Not found')}</title>
      <h1>Page not found</h1>
      <EmptyState title="There is no page at this address.">
        <p><Link to="/clusters">Go to your clusters</Link></p>
      </EmptyState>
    </>
  );
}
