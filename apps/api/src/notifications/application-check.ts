import { ClusterState, ConflictError, UnavailableError, ValidationError, type Cluster } from '../../../../libs/core/src';
import type { ManagedApplication } from './managed-applications';
import type { Notification } from './notification';

/**
 * ARM's word on a notification. The URL's `sig` only proves that the caller knows the
 * secret; Azure's guidance is to read the application back and check that its
 * provisioningState matches the notification's ("Endpoint authentication" in
 * https://learn.microsoft.com/azure/azure-resource-manager/managed-applications/publish-notifications).
 * Every event is checked, before anything is written:
 *
 * | Notification                | ARM must show                                            |
 * |-----------------------------|----------------------------------------------------------|
 * | DELETE Deleting / Deleted   | the application Deleting, Deleted, or gone (404)          |
 * | any Failed                  | the application Failed (or Canceled)                      |
 * | PUT / PATCH, other states   | the application, neither deleting, deleted nor failed     |
 *
 * States are ARM's ProvisioningState of Microsoft.Solutions/applications (2019-07-01: NotSpecified,
 * Accepted, Running, Ready, Creating, Created, Deleting, Deleted, Canceled, Failed, Succeeded, Updating;
 * https://github.com/Azure/azure-rest-api-specs/blob/main/specification/solutions/resource-manager/Microsoft.Solutions/ManagedApplications/stable/2019-07-01/managedapplications.json).
 * A PUT Succeeded that ARM still shows in progress is taken (the create waits for the
 * application's tenantId output anyway). A refusal is a 4xx, which Azure does not retry;
 * a 503 where time settles it (Azure retries a 5xx for up to 10 hours).
 */

const DELETING = ['Deleting', 'Deleted'];
const FAILED = ['Failed', 'Canceled'];

export function checkAgainstArm(n: Notification, app: ManagedApplication | null, live: Cluster | null): void {
  const deleteEvent = n.eventType === 'DELETE' && n.provisioningState !== 'Failed';
  if (!app) {
    if (deleteEvent) return;
    throw new ValidationError('application_not_found', `Azure Resource Manager has no application ${n.applicationId}; send notifications only for applications that exist`, { field: 'applicationId' });
  }
  const state = app.provisioningState ?? 'NotSpecified';
  const agrees = deleteEvent ? DELETING.includes(state) : n.provisioningState === 'Failed' ? FAILED.includes(state) : !DELETING.includes(state) && !FAILED.includes(state);
  if (!agrees) {
    const details = { field: 'provisioningState', notified: `${n.eventType} ${n.provisioningState}`, armProvisioningState: state };
    if (deleteEvent) throw new ConflictError('application_not_deleting', `Azure Resource Manager shows application ${n.applicationId} ${state}, not being deleted; its cluster is deleted only once ARM shows the application Deleting, Deleted or gone`, details);
    throw new ConflictError('application_state_mismatch', `Azure Resource Manager shows application ${n.applicationId} ${state}, which a ${n.eventType} ${n.provisioningState} notification does not match`, details);
  }
  if (live && live.managedResourceGroupId?.toLowerCase() !== app.managedResourceGroupId.toLowerCase()) {
    // The application's live cluster is of another of its lifetimes (it was deleted and created again).
    if (live.state === ClusterState.Deleting) {
      throw new UnavailableError('previous_cluster_deleting', `the cluster of an earlier application ${n.applicationId} (another managed resource group) is still being deleted; the notification was not processed, send it again`, { clusterId: live.id });
    }
    throw new ConflictError('managed_resource_group_mismatch', `the live cluster of application ${n.applicationId} is in another managed resource group than the one Azure Resource Manager shows; an SRE must look at cluster ${live.id}`, { clusterId: live.id });
  }
}
