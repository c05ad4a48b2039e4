import { createBrowserRouter, Navigate } from 'react-router';
import { Shell } from './ui/shell';
import { ClustersPage } from './pages/clusters';
import { CreateWizard } from './pages/create';
import { DeploymentPage } from './pages/deployment';
import { ClusterPage } from './cluster/cluster-page';
import { FleetPage } from './fleet/fleet-page';
import { WavePage } from './fleet/wave-page';
import { NotFoundPage } from './pages/not-found';

// Every path here is also served index.html by the API (apps/api/src/console/console.routes.ts).
export const router = createBrowserRouter([
  {
    element: <Shell />,
    children: [
      { path: '/', element: <Navigate to="/clusters" replace /> },
      { path: '/clusters', element: <ClustersPage /> },
      { path: '/clusters/new', element: <CreateWizard /> },
      { path: '/clusters/:id', element: <ClusterPage /> },
      { path: '/deployments/:operationId', element: <DeploymentPage /> },
      { path: '/fleet', element: <FleetPage /> },
      { path: '/fleet/waves/:id', element: <WavePage /> },
      { path: '*', element: <NotFoundPage /> },
    ],
  },
]);
