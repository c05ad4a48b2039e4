/**
 * The Azure target as the unit tests use it: no ARM behind it (every call to
 * Azure fails), only its pure parts (`parameters`) exercised against
 * infra/arm/cluster.json and the local ARM's preflight.
 */
import { AzureTarget } from '../../libs/provisioner/src';
import { CONTROL_PLANE_SUBNET_ID } from './local-arm';
import { sshPublicKey } from './ssh-key';

export function offlineAzureTarget(template: Record<string, unknown>): AzureTarget {
  return new AzureTarget({
    credential: { getToken: () => Promise.reject(new Error('no ARM here')) }, armEndpoint: 'https://management.invalid',
    placement: () => Promise.reject(new Error('unused')), journal: { current: () => Promise.reject(new Error('unused')), save: () => Promise.resolve() },
    template, adminSshPublicKey: sshPublicKey('operator'), managementSubnetId: CONTROL_PLANE_SUBNET_ID,
    consulPackage: (version) => ({ version, url: `https://packages.example.invalid/consul_${version}.deb`, sha256: 'ab'.repeat(32) }), binaryFor: () => 'consul',
  });
}
