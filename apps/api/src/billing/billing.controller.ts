import { Controller, Param, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ROUTES, type QueryOf } from '../../../../libs/contracts/src';
import { Caller, type Principal } from '../auth/principal';
import { BillingService } from './billing.service';
import { Route } from '../validation/input';

/** The caller's tenant's usage and invoices; SREs get every subscription's invoices. */
@Controller()
export class BillingController {
  constructor(private readonly billing: BillingService) {}

  @Route(ROUTES.usage)
  usage(@Caller() caller: Principal, @Query() query: QueryOf<typeof ROUTES.usage>) {
    return this.billing.usageFor(caller.tenantId, query);
  }

  @Route(ROUTES.invoice)
  async invoice(@Caller() caller: Principal, @Param('month') month: string, @Query('subscriptionId') subscriptionId: string | undefined, @Res({ passthrough: true }) reply: FastifyReply) {
    const csv = await this.billing.invoiceFor(caller.tenantId, month, subscriptionId || undefined);
    reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', `attachment; filename="invoice-${month}.csv"`);
    return csv;
  }

  @Route(ROUTES.reconciliation)
  reconciliation(@Query() query: QueryOf<typeof ROUTES.reconciliation>) {
    return this.billing.reconciliation(query);
  }

  @Route(ROUTES.allInvoices)
  allInvoices(@Param('month') month: string) {
    return this.billing.allInvoices(month);
  }
}
