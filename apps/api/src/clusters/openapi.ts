import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { DEFAULT_VERSION, REGIONS, TIER_NAMES, UPGRADE_MODES, VERSIONS } from '../../../../libs/core/src';

/** A weekly maintenance window in UTC; it may run past midnight and past Saturday into Sunday. */
export class UpgradeWindowBody {
  @ApiProperty({ minimum: 0, maximum: 6, description: 'Day the window opens: 0 Sunday … 6 Saturday', example: 0 }) dayOfWeek!: number;
  @ApiProperty({ minimum: 0, maximum: 23, description: 'Hour (UTC) the window opens', example: 2 }) startHourUtc!: number;
  @ApiProperty({ minimum: 1, maximum: 24, description: 'How long the window stays open', example: 4 }) hours!: number;
}

export class UpgradePolicyBody {
  @ApiProperty({
    enum: UPGRADE_MODES,
    default: 'manual',
    description: 'automatic: the worker upgrades the cluster to the RECOMMENDED version (GET /v1/versions) once per window occurrence; manual: only POST /upgrade',
  })
  mode!: string;
  @ApiPropertyOptional({ type: () => UpgradeWindowBody, nullable: true, description: 'Required for automatic; on PATCH a missing member keeps its current value, null removes the window (manual only)' })
  window?: UpgradeWindowBody | null;
}

/** OpenAPI description of the create body; validation itself is parseCreateCluster. */
export class CreateClusterBody {
  @ApiProperty({ example: 'orders', pattern: '^[a-z][a-z0-9-]{0,35}$' }) name!: string;
  @ApiProperty({ format: 'uuid' }) subscriptionId!: string;
  @ApiProperty({ example: 'rg-orders' }) resourceGroup!: string;
  @ApiProperty({ enum: REGIONS.map((r) => r.name), example: 'westeurope' }) region!: string;
  @ApiProperty({ enum: TIER_NAMES, example: 'standard' }) tier!: string;
  @ApiPropertyOptional({ description: 'Consul datacenter name; defaults to the cluster name' }) datacenter?: string;
  @ApiPropertyOptional({ enum: VERSIONS.map((v) => v.version), default: DEFAULT_VERSION }) consulVersion?: string;
  @ApiPropertyOptional({ default: false }) publicEndpoint?: boolean;
  @ApiPropertyOptional({ description: 'The VNet address space on the Azure target: a private /24 to /28 network address', default: '172.25.16.0/24' }) vnetCidr?: string;
  @ApiPropertyOptional({ description: 'Scheduled snapshots: { intervalHours: 1-24 (default 24), retention: 1-365 (default 30) }', example: { intervalHours: 24, retention: 30 } })
  snapshotPolicy?: { intervalHours?: number; retention?: number };
  @ApiPropertyOptional({ type: () => UpgradePolicyBody, description: 'Default: { mode: manual, window: null }' }) upgradePolicy?: UpgradePolicyBody;
}

/** OpenAPI description of PATCH /v1/clusters/{id}; one or more members. */
export class UpdateClusterBody {
  @ApiPropertyOptional({ description: 'Scheduled snapshots: { intervalHours: 1-24, retention: 1-365 }; applied at once (200)', example: { intervalHours: 6 } })
  snapshotPolicy?: { intervalHours?: number; retention?: number };
  @ApiPropertyOptional({ type: () => UpgradePolicyBody, description: 'Applied at once (200); audited as cluster.upgrade-policy.changed' }) upgradePolicy?: UpgradePolicyBody;
  @ApiPropertyOptional({ enum: TIER_NAMES, description: 'A different tier queues a scale operation (202 with it)' }) tier?: string;
}

export class UpgradePolicyView {
  @ApiProperty({ enum: UPGRADE_MODES }) mode!: string;
  @ApiProperty({ type: () => UpgradeWindowBody, nullable: true }) window!: UpgradeWindowBody | null;
}

/** The cluster as GET /v1/clusters/{id} shows it (see views.ts). */
export class ClusterView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ enum: ['Creating', 'Running', 'Updating', 'Deleting', 'Deleted', 'Failed'] }) state!: string;
  @ApiProperty({ nullable: true, type: String }) stateReason!: string | null;
  @ApiProperty({ enum: TIER_NAMES }) tier!: string;
  @ApiProperty({ description: 'Number of servers' }) servers!: number;
  @ApiProperty() consulVersion!: string;
  @ApiProperty() region!: string;
  @ApiProperty() datacenter!: string;
  @ApiProperty({ format: 'uuid' }) subscriptionId!: string;
  @ApiProperty() resourceGroup!: string;
  @ApiProperty() managedResourceGroup!: string;
  @ApiProperty() publicEndpoint!: boolean;
  @ApiProperty() target!: string;
  @ApiProperty({ example: { https: 'https://127.64.0.1:8501', ui: 'https://127.64.0.1:8501/ui/' } }) endpoints!: { https: string | null; ui: string | null };
  @ApiProperty({ type: [String] }) serverAddresses!: string[];
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) runningSince!: string | null;
  @ApiProperty({ example: { intervalHours: 24, retention: 30 } }) snapshotPolicy!: { intervalHours: number; retention: number };
  @ApiProperty({ type: () => UpgradePolicyView }) upgradePolicy!: UpgradePolicyView;
  @ApiProperty({
    description: 'When the CA and the earliest server certificate expire (null until recorded); rotated automatically before (CERT_ROTATION_THRESHOLD_DAYS, CA_ROTATION_THRESHOLD_DAYS)',
    example: { caNotAfter: '2031-12-02T13:00:00.000Z', serverCertificatesNotAfter: '2027-12-02T13:00:00.000Z' },
  }) certificates!: { caNotAfter: string | null; serverCertificatesNotAfter: string | null };
  @ApiProperty({ example: { status: 'healthy', reason: null, checkedAt: '2030-01-01T00:00:00.000Z' } }) health!: { status: string; reason: string | null; checkedAt: string | null };
}
