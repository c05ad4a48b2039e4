import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** OpenAPI descriptions of the token routes; validation is in IssuedTokensService. */
export class CreateTokenBody {
  @ApiPropertyOptional({ maxLength: 256, description: 'What the token is for, recorded in Consul and listed by GET /tokens' }) description?: string;
}

export class TokenSecretView {
  @ApiProperty({ format: 'uuid' }) accessorId!: string;
  @ApiProperty({ format: 'uuid', description: 'The token itself (X-Consul-Token); handed out once' }) secretId!: string;
  @ApiProperty() description!: string;
  @ApiProperty({ format: 'uuid', description: 'The create-token operation' }) operationId!: string;
}

export class TokenPendingView {
  @ApiProperty({ description: 'The create-token operation (GET /v1/operations/{id})' }) operation!: Record<string, unknown>;
  @ApiProperty({ example: '/v1/operations/0b0e7c1e-2f4d-4c55-9a59-3f1d0e2a7b10/token', description: 'Where the secret is collected with a POST, once, after the operation has Succeeded, by the user who asked for it' }) collect!: string;
  @ApiProperty() message!: string;
}

export class IssuedTokenView {
  @ApiProperty({ format: 'uuid' }) accessorId!: string;
  @ApiProperty() description!: string;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ description: 'The user who asked for it' }) createdBy!: string;
  @ApiProperty({ enum: ['creating', 'active', 'revoking', 'revoked'] }) state!: string;
  @ApiProperty({ format: 'uuid' }) operationId!: string;
  @ApiProperty({ description: 'Whether its secret was handed out' }) collected!: boolean;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) collectedAt!: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String, description: 'Not collected yet: until when it may be; after that it is revoked' }) collectBy!: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) revokedAt!: string | null;
  @ApiProperty({ enum: ['requested', 'uncollected', 'create-failed', 'cluster-deleted'], nullable: true, type: String }) revokeReason!: string | null;
}

export class IssuedTokenListView {
  @ApiProperty({ type: [IssuedTokenView] }) tokens!: IssuedTokenView[];
}

export class TokenRevokeView {
  @ApiProperty({ description: 'The revoke-token operation' }) operation!: Record<string, unknown>;
  @ApiProperty({ type: IssuedTokenView }) token!: IssuedTokenView;
}
