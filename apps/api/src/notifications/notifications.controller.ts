import { Body, Controller, HttpCode, Post, Query } from '@nestjs/common';
import { ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { Public } from '../auth/principal';
import { Input, query } from '../validation/input';
import { NotificationsService } from './notifications.service';

/**
 * Azure's managed application notifications. Azure calls the offer's
 * notification URL, not a user: no bearer token, the shared secret in `sig`.
 */
@ApiTags('managed-applications')
@Public()
@Controller()
export class NotificationsController {
  constructor(private readonly service: NotificationsService) {}

  @Post('resource')
  @HttpCode(200)
  // The body is checked by parseNotification AFTER the signature: a caller without the secret
  // learns nothing about the payload's rules (and gets 401/403, not 400).
  @Input({ query: query({ sig: z.string().max(512).optional() }), body: z.unknown() })
  @ApiOperation({ summary: 'Managed application notification from Azure (?sig= the shared secret): PUT creates, DELETE deletes, Failed is shown to SREs; a repeat changes nothing' })
  @ApiQuery({ name: 'sig', required: true })
  receive(@Query('sig') sig: string | undefined, @Body() body: unknown) {
    return this.service.receive(sig, body);
  }
}
