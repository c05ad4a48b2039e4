import { Body, Controller, Param } from '@nestjs/common';
import { ROUTES, type BodyOf } from '../../../../libs/contracts/src';
import { Caller, type Principal } from '../auth/principal';
import { Route } from '../validation/input';
import { AuditExportService } from './audit-export.service';

@Controller()
export class AuditExportController {
  constructor(private readonly service: AuditExportService) {}

  @Route(ROUTES.getAuditExport)
  get(@Caller() caller: Principal, @Param('id') id: string) {
    return this.service.get(caller, id);
  }

  @Route(ROUTES.putAuditExport)
  put(@Caller() caller: Principal, @Param('id') id: string, @Body() body: BodyOf<typeof ROUTES.putAuditExport>) {
    return this.service.put(caller, id, body);
  }

  @Route(ROUTES.deleteAuditExport)
  delete(@Caller() caller: Principal, @Param('id') id: string) {
    return this.service.delete(caller, id);
  }
}
