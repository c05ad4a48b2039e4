import type { z } from 'zod';
import { ERROR_BODY, ROUTES, routerPath, type Answer, type RouteContract } from '../../../../libs/contracts/src';
import { errorBody } from '../../../../libs/core/src';

const BY_ROUTE = new Map<string, RouteContract>(Object.values(ROUTES).map((r: RouteContract) => [`${r.method} ${routerPath(r.path)}`, r]));

/** What is wrong with an answer of `status` to a route of this contract, if anything. */
export function answerProblem(contract: RouteContract, status: number, contentType: string, payload: string): string | undefined {
  const declared: Answer | undefined = contract.answers[status];
  if (declared === undefined) {
    // A route browsers navigate to (it answers with redirects) refuses them with a page.
    if (status >= 400 && contentType.startsWith('text/html') && Object.values(contract.answers).includes('redirect')) return undefined;
    if (status >= 400) return jsonProblem(ERROR_BODY, contentType, payload);
    return `status ${status} is not among the route's answers (${Object.keys(contract.answers).join(', ')})`;
  }
  if (declared === 'redirect') return status === 302 ? undefined : `expected a redirect, got ${status}`;
  if (declared === 'empty') return payload === '' || status === 405 ? undefined : 'expected no body';
  if ('text' in declared) return contentType.startsWith(declared.text) ? undefined : `expected ${declared.text}, got ${contentType}`;
  return jsonProblem(declared, contentType, payload);
}

function jsonProblem(schema: z.ZodType, contentType: string, payload: string): string | undefined {
  if (!contentType.startsWith('application/json')) return `expected JSON, got ${contentType || 'no content type'}`;
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return 'the body is not JSON';
  }
  const r = schema.safeParse(value);
  if (r.success) return undefined;
  const issue = r.error.issues[0]!;
  return `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`;
}

// The parts of Fastify's request and reply the hook uses (the API's Fastify is @nestjs/platform-fastify's own copy).
interface AnsweredRequest {
  method: string;
  routeOptions?: { url?: string };
  log: { error(o: object, msg: string): void };
}
interface Reply {
  statusCode: number;
  getHeader(name: string): unknown;
  code(n: number): Reply;
  header(name: string, value: string): Reply;
}

/**
 * An onSend hook (API_VERIFY_ANSWERS, on in the tests): every answer of a route with a contract is
 * checked against it, and one that does not match is replaced by a 500 naming the difference, so
 * that any test that reaches it fails. Answers of routes without a contract (the console's files,
 * the docs, the Consul UI proxy) pass as they are.
 */
export async function verifyAnswer(req: AnsweredRequest, reply: Reply, payload: unknown): Promise<unknown> {
  const contract = BY_ROUTE.get(`${req.method} ${req.routeOptions?.url ?? ''}`);
  if (!contract || (typeof payload !== 'string' && payload != null)) return payload;
  const contentType = String(reply.getHeader('content-type') ?? '');
  const problem = answerProblem(contract, reply.statusCode, contentType, payload ?? '');
  if (!problem) return payload;
  req.log.error({ route: contract.id, status: reply.statusCode, problem }, 'an answer does not match its contract');
  reply.code(500).header('content-type', 'application/json; charset=utf-8');
  return JSON.stringify(errorBody('answer_contract_violation', `${contract.method} ${contract.path} answered ${reply.statusCode} not as its contract says: ${problem}`, { route: contract.id }));
}
