/**
 * What Azure Resource Manager checks when a deployment is PUT, before it
 * accepts it: the resource group, the caller's role on it, a deployment of the
 * same name still running, the template and its parameters (static
 * validation), the caller's right to write each resource the template holds,
 * and the resource providers' own preflight (names, zones, SSH keys, custom
 * data). A refused PUT answers at once with ARM's status and error body, nested
 * as ARM nests it, and leaves no deployment behind ("preflight errors appear in
 * the activity log but not in deployment history, because the deployment never
 * began": https://learn.microsoft.com/azure/azure-resource-manager/bicep/deploy-preflight).
 *
 * Each rule cites the document or the real answer (an ARM body quoted in a
 * public issue) it follows. Used by local-arm.ts's deployment PUT:
 *
 *   const preflight = new ArmPreflight({ zonesOf: availabilityZones });
 *   preflight.setPrincipal(clientId);                  // who the requests come from
 *   preflight.putResourceGroup(sub, 'rg', 'westeurope'); // exists, Contributor by default
 *   preflight.setRole(sub, 'rg', 'Owner');             // per test
 *   preflight.beginDeleteResourceGroup(sub, 'rg');     // being deleted
 *   const refused = preflight.checkDeploymentPut({ subscription, resourceGroup, name, properties, running });
 */
import { randomUUID } from 'node:crypto';
import { RUNTIME, TemplateError, evaluateDeployment, type EvaluatedResource, type Value } from './arm-template';
import { securityGroupRefusals } from './arm-nsg';

/** Built-in roles that matter here (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles). */
export type RoleName = 'Owner' | 'Contributor' | 'User Access Administrator' | 'Reader' | 'Network Contributor';

export interface ArmErrorBody {
  code: string;
  message: string;
  target?: string;
  details?: ArmErrorBody[];
}

export interface Refusal {
  status: number;
  error: ArmErrorBody;
}

interface Group {
  subscription: string;
  name: string | RegExp;
  location: string;
  state: 'Succeeded' | 'Deleting';
  role?: RoleName;
}

interface GlobalName {
  kind: 'storage' | 'vault';
  name: string;
  subscription: string;
  resourceGroup: string;
}

/**
 * The role the product's README asks for: Contributor on the managed resource
 * group, granted through the managed application offer's authorizations.
 */
export const DOCUMENTED_ROLE: RoleName = 'Contributor';

/** Roles whose actions include writing Microsoft.Authorization resources (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/general). Contributor's NotActions exclude it. */
const WRITES_AUTHORIZATION: ReadonlySet<RoleName> = new Set(['Owner', 'User Access Administrator']);
/** Roles that may write resources (deployments among them): Reader may not; User Access Administrator only manages access. */
const WRITES_RESOURCES: ReadonlySet<RoleName> = new Set(['Owner', 'Contributor']);
/** Network Contributor: Microsoft.Network/* (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/networking#network-contributor). */
const WRITES_NETWORK: ReadonlySet<RoleName> = new Set(['Owner', 'Contributor', 'Network Contributor']);

const VALIDATION_FAILED = (name: string) => `The template deployment '${name}' is not valid according to the validation procedure. The tracking id is '${randomUUID()}'. See inner errors for details.`;

/** The provider-preflight wrapper ARM answers with (Azure/azure-powershell#5100, Azure/azure-xplat-cli#2791: InvalidTemplateDeployment → PreflightValidationCheckFailed → the root causes, HTTP 400). */
const preflightFailed = (deployment: string, causes: ArmErrorBody[]): Refusal => ({
  status: 400,
  error: {
    code: 'InvalidTemplateDeployment',
    message: VALIDATION_FAILED(deployment),
    details: [{ code: 'PreflightValidationCheckFailed', message: 'Preflight validation failed. Please refer to the details for the specific errors.', details: causes }],
  },
});

const lower = (s: string) => s.toLowerCase();
const obj = (v: Value): Record<string, Value> => (v && typeof v === 'object' ? (v as Record<string, Value>) : {});
const known = (v: Value): boolean => v !== RUNTIME && v !== undefined;

/** Storage account names: 3-24 lower-case letters and digits (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-storage-account-name). */
const STORAGE_NAME = /^[a-z0-9]{3,24}$/;
/** Key vault names: 3-24 letters, digits and hyphens, starting with a letter, ending with a letter or digit, no "--" (https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules#microsoftkeyvault). */
const VAULT_NAME = /^(?=.{3,24}$)[a-zA-Z](?!.*--)[a-zA-Z0-9-]*[a-zA-Z0-9]$/;
/**
 * customData: base64 of at most 65535 bytes, i.e. at most 87380 base64 characters
 * (https://learn.microsoft.com/rest/api/compute/virtual-machine-scale-sets/create-or-update#virtualmachinescalesetosprofile;
 * the error Azure answers: Azure/aks-engine#1663).
 */
export const CUSTOM_DATA_MAX_CHARS = 87380;

/**
 * An SSH public key Azure accepts: OpenSSH's one-line format, ssh-rsa of 2048
 * bits or more, or ssh-ed25519 (https://learn.microsoft.com/azure/virtual-machines/linux/mac-create-ssh-keys#supported-ssh-key-formats).
 */
export function validSshPublicKey(keyData: string): boolean {
  const m = /^(ssh-rsa|ssh-ed25519) ([A-Za-z0-9+/]+={0,2})(?: \S.*)?$/.exec(keyData.trim());
  if (!m) return false;
  const blob = Buffer.from(m[2], 'base64');
  const field = (at: number): [Buffer, number] => {
    const n = blob.readUInt32BE(at);
    return [blob.subarray(at + 4, at + 4 + n), at + 4 + n];
  };
  try {
    const [type, next] = field(0);
    if (type.toString() !== m[1]) return false;
    if (m[1] === 'ssh-ed25519') return field(next)[0].length === 32;
    const [, afterE] = field(next);
    const [modulus] = field(afterE);
    return (modulus[0] === 0 ? modulus.length - 1 : modulus.length) * 8 >= 2048;
  } catch {
    return false;
  }
}

export class ArmPreflight {
  private readonly groups: Group[] = [];
  private readonly names: GlobalName[] = [];
  private clientId = '00000000-0000-0000-0000-000000000000';
  private readonly objectId = randomUUID();
  /** When the running deployments started (DeploymentActive names it). */
  private readonly started = new Map<string, Date>();

  constructor(private readonly opts: { zonesOf(location: string): string[]; tenantId?: string }) {}

  setPrincipal(clientId: string): void {
    this.clientId = clientId;
  }

  /** The group exists (a RegExp: every group whose name matches), with the principal's role on it (default: the documented one; null: none). */
  putResourceGroup(subscription: string, name: string | RegExp, location = 'westeurope', role: RoleName | null = DOCUMENTED_ROLE): void {
    this.forget(subscription, name);
    this.groups.push({ subscription, name, location, state: 'Succeeded', role: role ?? undefined });
  }

  setRole(subscription: string, name: string, role: RoleName | undefined): void {
    const g = this.group(subscription, name);
    if (!g) throw new Error(`arm-preflight: no resource group ${name}`);
    if (typeof g.name !== 'string') this.groups.push({ ...g, name, role });
    else g.role = role;
  }

  /** A DELETE of the group was accepted: it answers as being deleted until removeResourceGroup. */
  beginDeleteResourceGroup(subscription: string, name: string): void {
    const g = this.group(subscription, name);
    if (!g) throw new Error(`arm-preflight: no resource group ${name}`);
    this.groups.push({ ...g, name, state: 'Deleting' });
  }

  /** The group is gone, and the globally unique names of its resources with it. */
  removeResourceGroup(subscription: string, name: string): void {
    this.forget(subscription, name);
    this.release(subscription, name);
  }

  resourceGroupExists(subscription: string, name: string): boolean {
    return this.group(subscription, name)?.state === 'Succeeded';
  }

  /**
   * Whether the principal may peer with a VNet of this group: Microsoft.Network/virtualNetworks/peer/action,
   * which Network Contributor (and Contributor, Owner) hold
   * (https://learn.microsoft.com/azure/virtual-network/virtual-network-manage-peering#permissions).
   */
  mayPeer(subscription: string, resourceGroup: string): boolean {
    const role = this.group(subscription, resourceGroup)?.role;
    return role !== undefined && WRITES_NETWORK.has(role);
  }

  /**
   * The deployment PUT's answer when ARM refuses it, else null (and its
   * storage account and vault names are taken from now on). `running`: a
   * deployment of this name is Accepted or Running in the group.
   */
  /**
   * A direct write of one resource (not a deployment): the group exists and the principal's role
   * there allows the action, else ARM's 404 or 403 AuthorizationFailed (as for deployments).
   */
  checkWrite(subscription: string, resourceGroup: string, resourceId: string, action: string): Refusal | null {
    const group = this.group(subscription, resourceGroup);
    if (!group) return { status: 404, error: { code: 'ResourceGroupNotFound', message: `Resource group '${resourceGroup}' could not be found.` } };
    const allowed = lower(action).startsWith('microsoft.network/') ? WRITES_NETWORK : WRITES_RESOURCES;
    if (!group.role || !allowed.has(group.role)) {
      return { status: 403, error: { code: 'AuthorizationFailed', message: `The client '${this.clientId}' with object id '${this.objectId}' does not have authorization to perform action '${action}' over scope '${resourceId}' or the scope is invalid. If access was recently granted, please refresh your credentials.` } };
    }
    return null;
  }

  checkDeploymentPut(req: { subscription: string; resourceGroup: string; name: string; properties: { mode?: string; template?: Record<string, unknown>; parameters?: Record<string, { value?: unknown }>; templateLink?: unknown }; running: boolean }): Refusal | null {
    const { subscription, resourceGroup, name } = req;
    const group = this.group(subscription, resourceGroup);
    // https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/common-deployment-errors (ResourceGroupNotFound: "The target resource group must already exist").
    if (!group) return { status: 404, error: { code: 'ResourceGroupNotFound', message: `Resource group '${resourceGroup}' could not be found.` } };
    // ResourceGroupBeingDeleted, 409 (the body Azure/azure-cli#28679 and openshift/openshift-azure#2020 quote).
    if (group.state === 'Deleting') return { status: 409, error: { code: 'ResourceGroupBeingDeleted', message: `The resource group '${resourceGroup}' is in deprovisioning state and cannot perform this operation.` } };
    const deploymentScope = `/subscriptions/${subscription}/resourcegroups/${resourceGroup}/providers/Microsoft.Resources/deployments/${name}`;
    // The caller needs Microsoft.Resources/deployments/write on the group (https://learn.microsoft.com/azure/azure-resource-manager/templates/deploy-rest#required-permissions);
    // the 403 body as ARM words it (Azure/Enterprise-Scale#257, Azure/azure-quickstart-templates#8920).
    if (!group.role || !WRITES_RESOURCES.has(group.role)) {
      return { status: 403, error: { code: 'AuthorizationFailed', message: `The client '${this.clientId}' with object id '${this.objectId}' does not have authorization to perform action 'Microsoft.Resources/deployments/write' over scope '${deploymentScope}' or the scope is invalid. If access was recently granted, please refresh your credentials.` } };
    }
    // A PUT over a deployment of the same name that still runs: 409 DeploymentActive (the message microsoft/mwt-ds#29 and microsoft/azure-pipelines-tasks#5320 quote).
    const key = lower(`${subscription}/${resourceGroup}/${name}`);
    if (req.running) {
      const since = this.started.get(key) ?? new Date();
      const expires = new Date(since.getTime() + 7 * 24 * 3600_000);
      return { status: 409, error: { code: 'DeploymentActive', message: `Unable to edit or replace deployment '${name}': previous deployment from '${since.toISOString()}' is still active (expiration time is '${expires.toISOString()}'). Please see https://aka.ms/arm-deploy for usage details.` } };
    }
    const template = req.properties.template;
    if (!template) return null; // a linked template: fetched by ARM, not checked here
    let resources: EvaluatedResource[];
    try {
      resources = evaluateDeployment(template, req.properties.parameters ?? {}, {
        subscriptionId: subscription, resourceGroup, location: group.location, tenantId: this.opts.tenantId ?? '00000000-0000-0000-0000-000000000000', deploymentName: name, zonesOf: this.opts.zonesOf,
      }).resources.filter((r) => r.deployed);
    } catch (e) {
      // Static validation: 400 InvalidTemplate (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-invalid-template).
      if (e instanceof TemplateError) return { status: 400, error: { code: 'InvalidTemplate', message: e.message } };
      throw e;
    }
    const refused = this.authorization(name, group, subscription, resourceGroup, resources) ?? this.providers(name, subscription, resourceGroup, group.location, resources);
    if (refused) return refused;
    this.take(subscription, resourceGroup, req.properties.mode, resources);
    this.started.set(key, new Date());
    return null;
  }

  /**
   * Writing Microsoft.Authorization/* (role assignments) needs Owner or User
   * Access Administrator; Contributor's NotActions exclude it
   * (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/privileged#contributor).
   * ARM refuses the whole deployment at preflight with 400 InvalidTemplateDeployment,
   * "Authorization failed for template resource ..." (Azure-Samples/azure-search-openai-demo#242 and #1483, microsoft/finops-toolkit#1248).
   */
  private authorization(deployment: string, group: Group, subscription: string, resourceGroup: string, resources: EvaluatedResource[]): Refusal | null {
    if (group.role && WRITES_AUTHORIZATION.has(group.role)) return null;
    const causes = resources.filter((r) => r.type.toLowerCase().startsWith('microsoft.authorization/')).map((r): ArmErrorBody => {
      const resourceName = r.name === RUNTIME ? '(runtime)' : r.name;
      const scope = typeof r.scope === 'string' ? r.scope : `/subscriptions/${subscription}/resourceGroups/${resourceGroup}`;
      const message = `Authorization failed for template resource '${resourceName}' of type '${r.type}'. The client '${this.clientId}' with object id '${this.objectId}' does not have permission to perform action '${r.type}/write' at scope '${scope}/providers/${r.type}/${resourceName}'.`;
      return { code: 'AuthorizationFailed', message };
    });
    if (causes.length === 0) return null;
    return { status: 400, error: { code: 'InvalidTemplateDeployment', message: `The template deployment failed with error: '${causes[0].message}'.`, details: causes } };
  }

  /** The resource providers' preflight, every failure listed (as PreflightValidationCheckFailed lists them). */
  private providers(deployment: string, subscription: string, resourceGroup: string, groupLocation: string, resources: EvaluatedResource[]): Refusal | null {
    const causes: ArmErrorBody[] = [];
    for (const r of resources) {
      const type = r.type.toLowerCase();
      const location = typeof r.location === 'string' ? r.location : groupLocation;
      const zones = Array.isArray(r.zones) ? r.zones : [];
      if (type === 'microsoft.storage/storageaccounts' && typeof r.name === 'string') causes.push(...this.storageAccount(r.name, subscription, resourceGroup, location, r.sku));
      if (type === 'microsoft.keyvault/vaults' && typeof r.name === 'string') causes.push(...this.vault(r.name, subscription, resourceGroup));
      if (type === 'microsoft.network/privatelinkservices') causes.push(...privateLinkService(r, resources));
      if (type === 'microsoft.network/networksecuritygroups') {
        causes.push(...securityGroupRefusals(r, (nsg, rule) => `/subscriptions/${subscription}/resourceGroups/${resourceGroup}/providers/Microsoft.Network/networkSecurityGroups/${nsg}/securityRules/${rule}`));
      }
      if (zones.length > 0 && !this.opts.zonesOf(location).length) {
        const [ns, ...rest] = r.type.split('/');
        // Compute: ResourceTypeNotSupportAvailabilityZones (kubernetes-sigs/cluster-api-provider-azure#294); Network: LocationNotSupportAvailabilityZones (pivotal/paving#79).
        if (ns.toLowerCase() === 'microsoft.compute') causes.push({ code: 'ResourceTypeNotSupportAvailabilityZones', message: `The resource type '${rest.join('/')}' does not support availability zones at location '${location}' and api-version '${r.apiVersion}'.` });
        else causes.push({ code: 'LocationNotSupportAvailabilityZones', message: `The resource '${r.type}/${String(r.name)}' does not support availability zones at location '${location}'.` });
      }
      if (type === 'microsoft.compute/virtualmachinescalesets' || type === 'microsoft.compute/virtualmachines') {
        const osProfile = type.endsWith('scalesets') ? obj(obj(obj(r.properties).virtualMachineProfile).osProfile) : obj(obj(r.properties).osProfile);
        causes.push(...linuxProfile(osProfile));
      }
    }
    return causes.length ? preflightFailed(deployment, causes) : null;
  }

  private storageAccount(name: string, subscription: string, resourceGroup: string, location: string, sku: Value): ArmErrorBody[] {
    if (!STORAGE_NAME.test(name)) {
      return [{ code: 'AccountNameInvalid', target: name, message: `${name} is not a valid storage account name. Storage account name must be between 3 and 24 characters in length and use numbers and lower-case letters only.` }];
    }
    const out: ArmErrorBody[] = [];
    const taken = this.names.find((n) => n.kind === 'storage' && n.name === name);
    if (taken && lower(taken.subscription) !== lower(subscription)) out.push({ code: 'StorageAccountAlreadyTaken', target: name, message: `The storage account named ${name} is already taken.` });
    else if (taken && lower(taken.resourceGroup) !== lower(resourceGroup)) out.push({ code: 'StorageAccountInAnotherResourceGroup', target: name, message: `The account ${name} is already in another resource group in this subscription.` });
    // Zone-redundant storage exists only in regions with availability zones
    // (https://learn.microsoft.com/azure/storage/common/storage-redundancy#zone-redundant-storage);
    // elsewhere the SKU is refused (AccountTypeNotSupportedInLocation, https://learn.microsoft.com/rest/api/storagerp/srp_error_codes_create_storage_account).
    const skuName = obj(sku).name;
    if (typeof skuName === 'string' && /ZRS$/i.test(skuName) && this.opts.zonesOf(location).length === 0) {
      out.push({ code: 'AccountTypeNotSupportedInLocation', target: name, message: `The SKU ${skuName} is not supported in the specified location '${location}'.` });
    }
    return out;
  }

  private vault(name: string, subscription: string, resourceGroup: string): ArmErrorBody[] {
    // VaultNameNotValid and VaultAlreadyExists, as Key Vault words them (https://learn.microsoft.com/azure/key-vault/general/common-error-codes; Azure/AI-in-a-Box#104, Azure/azure-powershell#15115).
    if (!VAULT_NAME.test(name)) {
      return [{ code: 'VaultNameNotValid', message: `The vault name '${name}' is invalid. A vault's name must be between 3-24 alphanumeric characters. The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens. Follow this link for more information: https://go.microsoft.com/fwlink/?linkid=2147742` }];
    }
    const taken = this.names.find((n) => n.kind === 'vault' && lower(n.name) === lower(name));
    if (taken && !(lower(taken.subscription) === lower(subscription) && lower(taken.resourceGroup) === lower(resourceGroup))) {
      return [{ code: 'VaultAlreadyExists', message: `The vault name '${name}' is already in use. Vault names are globally unique so it is possible that the name is already taken. If you are sure that the vault name was not taken then it is possible that a vault with the same name was recently deleted but not purged after being placed in a recoverable state. If the vault is in a recoverable state then the vault will need to be purged before reusing the name. For more information about VaultAlreadyExists, soft delete and purging a vault follow this link https://go.microsoft.com/fwlink/?linkid=2147740.` }];
    }
    return [];
  }

  /** The names a deployment makes are taken; a Complete-mode deployment of no resources empties the group and frees them. */
  private take(subscription: string, resourceGroup: string, mode: string | undefined, resources: EvaluatedResource[]): void {
    if (mode === 'Complete' && resources.length === 0) return this.release(subscription, resourceGroup);
    for (const r of resources) {
      const kind = r.type.toLowerCase() === 'microsoft.storage/storageaccounts' ? 'storage' : r.type.toLowerCase() === 'microsoft.keyvault/vaults' ? 'vault' : undefined;
      if (!kind || typeof r.name !== 'string') continue;
      if (!this.names.some((n) => n.kind === kind && lower(n.name) === lower(r.name as string))) this.names.push({ kind, name: r.name, subscription, resourceGroup });
    }
  }

  private release(subscription: string, resourceGroup: string): void {
    for (let i = this.names.length - 1; i >= 0; i--) {
      if (lower(this.names[i].subscription) === lower(subscription) && lower(this.names[i].resourceGroup) === lower(resourceGroup)) this.names.splice(i, 1);
    }
  }

  private forget(subscription: string, name: string | RegExp): void {
    for (let i = this.groups.length - 1; i >= 0; i--) {
      const g = this.groups[i];
      if (lower(g.subscription) === lower(subscription) && String(g.name).toLowerCase() === String(name).toLowerCase()) this.groups.splice(i, 1);
    }
  }

  /** The latest declaration that covers the group (an exact name or a pattern). */
  private group(subscription: string, name: string): Group | undefined {
    for (let i = this.groups.length - 1; i >= 0; i--) {
      const g = this.groups[i];
      if (lower(g.subscription) !== lower(subscription)) continue;
      if (typeof g.name === 'string' ? lower(g.name) === lower(name) : g.name.test(name)) return g;
    }
    return undefined;
  }
}

/**
 * A Linux profile Compute accepts: with password login disabled, at least one
 * SSH key, each a valid public key (InvalidParameter, Azure/terraform-azurerm-avm-res-compute-virtualmachinescaleset#95 and
 * MicrosoftDocs/azure-docs#74103 quote both messages); customData base64 within
 * CUSTOM_DATA_MAX_CHARS.
 */
function linuxProfile(osProfile: Record<string, Value>): ArmErrorBody[] {
  const out: ArmErrorBody[] = [];
  const linux = obj(osProfile.linuxConfiguration);
  if (linux.disablePasswordAuthentication === true) {
    const keys = obj(linux.ssh).publicKeys;
    if (known(keys) && (!Array.isArray(keys) || keys.length === 0)) {
      out.push({ code: 'InvalidParameter', target: 'linuxConfiguration', message: 'Authentication using either SSH or by user name and password must be enabled in Linux profile.' });
    } else if (Array.isArray(keys) && keys.some((k) => known(obj(k).keyData) && !validSshPublicKey(String(obj(k).keyData ?? '')))) {
      out.push({ code: 'InvalidParameter', target: 'linuxConfiguration.ssh.publicKeys.keyData', message: 'The value of parameter linuxConfiguration.ssh.publicKeys.keyData is invalid.' });
    }
  }
  const customData = osProfile.customData;
  if (typeof customData === 'string' && customData !== '' && (customData.length > CUSTOM_DATA_MAX_CHARS || !/^[A-Za-z0-9+/]*={0,2}$/.test(customData) || customData.length % 4 !== 0)) {
    out.push({ code: 'InvalidParameter', target: 'customData', message: `Custom data in OSProfile must be in Base64 encoding and with a maximum length of ${CUSTOM_DATA_MAX_CHARS} characters.` });
  }
  return out;
}

/**
 * A Private Link service takes its NAT addresses from a subnet whose
 * privateLinkServiceNetworkPolicies is Disabled (it defaults to Enabled):
 * https://learn.microsoft.com/azure/private-link/disable-private-link-service-network-policy;
 * Network's answer, PrivateLinkServiceCannotBeCreatedInSubnetThatHasNetworkPoliciesEnabled, as
 * hashicorp/terraform-provider-azurerm's users quote it. The subnet is looked up among the
 * deployment's own resources.
 */
function privateLinkService(pls: EvaluatedResource, resources: EvaluatedResource[]): ArmErrorBody[] {
  const out: ArmErrorBody[] = [];
  const props = obj(pls.properties);
  const name = String(pls.name);
  for (const c of Array.isArray(props.ipConfigurations) ? props.ipConfigurations : []) {
    const subnetId = obj(obj(obj(c).properties).subnet).id;
    const m = typeof subnetId === 'string' ? /\/virtualNetworks\/([^/]+)\/subnets\/([^/]+)$/i.exec(subnetId) : null;
    if (!m) continue;
    const vnet = resources.find((r) => lower(r.type) === 'microsoft.network/virtualnetworks' && typeof r.name === 'string' && lower(r.name) === lower(m[1]));
    const subnet = (vnet ? (obj(vnet.properties).subnets as Value[] | undefined) ?? [] : []).map(obj).find((sn) => typeof sn.name === 'string' && lower(sn.name) === lower(m[2]));
    if (subnet && obj(subnet.properties).privateLinkServiceNetworkPolicies !== 'Disabled') {
      out.push({ code: 'PrivateLinkServiceCannotBeCreatedInSubnetThatHasNetworkPoliciesEnabled', message: `Private link service ${name} cannot be created in a subnet ${String(subnetId)} since it has private link service network policies enabled.` });
    }
  }
  return out;
}
