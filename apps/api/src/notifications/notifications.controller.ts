import { ROUTES } from '../../../../libs/contracts/src';
import { Body, Controller, Query } from '@nestjs/common';
import { Route } from '../validation/input';
import { NotificationsService } from './notifications.service';

/**
 * Azure's managed application notifications. Azure calls the offer's
 * notification URL, not a user: no bearer token, the shared secret in `sig`.
 */
@Controller()
export class NotificationsController {
  constructor(private readonly service: NotificationsService) {}

  @Route(ROUTES.notification)
  // The body is checked by parseNotification AFTER the signature: a caller without the secret
  // learns nothing about the payload's rules (and gets 401/403, not 400).
  receive(@Query('sig') sig: string | undefined, @Body() body: unknown) {
    return this.service.receive(sig, body);
  }
}
