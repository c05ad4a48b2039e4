import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { DEFAULT_VERSION, REGIONS, TIER_NAMES, VERSIONS } from '../../../../libs/core/src';

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
  @ApiPropertyOptional({ description: 'Scheduled snapshots: { intervalHours: 1-24 (default 24), retention: 1-365 (default 30) }', example: { intervalHours: 24, retention: 30 } })
  snapshotPolicy?: { intervalHours?: number; retention?: number };
}

export class CreateTokenBody {
  @ApiPropertyOptional({ maxLength: 256 }) description?: string;
}
