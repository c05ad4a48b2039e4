import { Controller, Get, Param, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiProduces, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ROLES } from '../../../../libs/core/src';
import { AnyRole, Caller, type Principal } from '../auth/principal';
import { BillingService } from './billing.service';
import { Input, params, query } from '../validation/input';
import { z } from 'zod';

const INSTANT = z.string({ error: 'a date or UTC date-time, given once' }).optional();
const MONTH = z.string();

/** The caller's tenant's usage and invoices; SREs get every subscription's invoices. */
@ApiTags('billing')
@ApiBearerAuth()
@Controller('v1')
export class BillingController {
  constructor(private readonly billing: BillingService) {}

  @Get('billing/usage')
  @AnyRole(ROLES.read, ROLES.write)
  @Input({ query: query({ from: INSTANT, to: INSTANT }) })
  @ApiOperation({ summary: "The tenant's metered usage per cluster and dimension for hours in [from, to) (default: this month so far), with amounts" })
  @ApiQuery({ name: 'from', required: false, description: 'date (2026-11-01) or UTC date-time' })
  @ApiQuery({ name: 'to', required: false, description: 'date or UTC date-time; exclusive' })
  usage(@Caller() caller: Principal, @Query() query: Record<string, unknown>) {
    return this.billing.usageFor(caller.tenantId, query);
  }

  @Get('billing/invoices/:month')
  @AnyRole(ROLES.read, ROLES.write)
  @Input({ params: params({ month: MONTH }), query: query({ subscriptionId: z.string({ error: 'subscriptionId is given once' }).optional() }) })
  @ApiProduces('text/csv')
  @ApiOperation({ summary: "The tenant's invoice for a month (yyyy-mm) as CSV, per subscription, with totals" })
  @ApiQuery({ name: 'subscriptionId', required: false })
  async invoice(@Caller() caller: Principal, @Param('month') month: string, @Query('subscriptionId') subscriptionId: string | undefined, @Res({ passthrough: true }) reply: FastifyReply) {
    const csv = await this.billing.invoiceFor(caller.tenantId, month, subscriptionId || undefined);
    reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', `attachment; filename="invoice-${month}.csv"`);
    return csv;
  }

  @Get('admin/billing/reconciliation')
  @AnyRole(ROLES.sre)
  @Input({ query: query({ from: INSTANT, to: INSTANT }) })
  @ApiOperation({ summary: 'SRE: our usage records for [from, to) against the marketplace: missing, extra and mismatched (resource, dimension, day) groups' })
  @ApiQuery({ name: 'from', required: false })
  @ApiQuery({ name: 'to', required: false })
  reconciliation(@Query() query: Record<string, unknown>) {
    return this.billing.reconciliation(query);
  }

  @Get('admin/billing/invoices/:month')
  @AnyRole(ROLES.sre)
  @Input({ params: params({ month: MONTH }) })
  @ApiOperation({ summary: "SRE: every subscription's invoice for a month (CSV text per subscription)" })
  allInvoices(@Param('month') month: string) {
    return this.billing.allInvoices(month);
  }
}
