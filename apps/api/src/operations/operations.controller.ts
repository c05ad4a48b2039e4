import { Controller, Get, Param } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { NotFoundError, OperationRepository, ROLES } from '../../../../libs/core/src';
import { AnyRole, Caller, type Principal } from '../auth/principal';
import { operationView } from '../clusters/views';

@ApiTags('operations')
@ApiBearerAuth()
@Controller('v1/operations')
export class OperationsController {
  constructor(private readonly operations: OperationRepository) {}

  @Get(':id')
  @AnyRole(ROLES.read, ROLES.write)
  async get(@Caller() caller: Principal, @Param('id') id: string) {
    const op = /^[0-9a-f-]{36}$/i.test(id) ? await this.operations.findForTenant(caller.tenantId, id) : null;
    if (!op) throw new NotFoundError('operation_not_found', `no operation ${id}`);
    return operationView(op);
  }
}
