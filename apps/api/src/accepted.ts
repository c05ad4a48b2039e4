import type { FastifyReply } from 'fastify';
import type { OperationView } from '../../../libs/contracts/src';

/** 202 Accepted: `body`, and the operation doing the work to follow (Location). */
export function accepted<T>(reply: FastifyReply, operation: Pick<OperationView, 'id'>, body: T): T {
  reply.status(202).header('Location', `/v1/operations/${operation.id}`);
  return body;
}
