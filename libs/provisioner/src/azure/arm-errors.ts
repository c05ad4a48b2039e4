import { TargetRefusedError } from '../target';

/**
 * ARM's error shape (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/common-deployment-errors):
 * a deployment's error nests its causes, `DeploymentFailed` → `ResourceDeploymentFailure` (one per
 * failed resource) → the root cause (`SkuNotAvailable`, `InvalidParameter`, ...), several levels
 * deep; older resource providers put the inner error as a JSON string in a detail's `message`
 * (`{"error":{"code":...,"message":...}}`), which is read as one more level.
 */
export interface ArmErrorBody {
  code?: string;
  message?: string;
  target?: string;
  details?: ArmErrorBody[];
}

/** An error whose message is itself an ARM error body as JSON: that body; else undefined. */
function embedded(message: string | undefined): ArmErrorBody | undefined {
  if (!message || !message.trimStart().startsWith('{')) return undefined;
  try {
    const v = JSON.parse(message) as { error?: ArmErrorBody } & ArmErrorBody;
    const inner = v.error ?? v;
    return typeof inner === 'object' && inner !== null && (inner.code || inner.message) ? inner : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The root causes of an ARM error: every leaf of its tree of details (depth first, in order),
 * each with its code and message. An error with no details is its own root cause.
 */
export function rootCauses(err: ArmErrorBody, depth = 0): { code: string; message: string }[] {
  const inner = embedded(err.message);
  if (inner && depth < 10) return rootCauses(inner, depth + 1);
  const details = (err.details ?? []).filter((d) => d && (d.code || d.message || d.details?.length));
  if (details.length === 0 || depth >= 10) return [{ code: err.code ?? 'UnknownError', message: err.message ?? 'no error message' }];
  return details.flatMap((d) => rootCauses(d, depth + 1));
}

/** `code: message` of the first root cause, with how many more there are. */
export function describeArmError(err: ArmErrorBody): { code: string; message: string } {
  const causes = rootCauses(err);
  const first = causes[0]!;
  const more = causes.length > 1 ? ` (and ${causes.length - 1} more: ${causes.slice(1, 4).map((c) => c.code).join(', ')})` : '';
  return { code: first.code, message: `${first.message}${more}` };
}

/** The ARM error body of a failed request the SDK threw (a RestError), if it carried one. */
export function armErrorOf(e: unknown): ArmErrorBody | undefined {
  const text = (e as { response?: { bodyAsText?: string | null } }).response?.bodyAsText;
  if (typeof text === 'string' && text.length > 0) {
    try {
      const body = JSON.parse(text) as { error?: ArmErrorBody };
      if (body.error && typeof body.error === 'object') return body.error;
    } catch {
      // not JSON: fall through to what the SDK parsed
    }
  }
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? { code, message: (e as Error).message } : undefined;
}

/**
 * Whether a request ARM answered with this status was refused for good. ARM's preflight
 * (template and parameter validation, authorization, name and quota checks) answers
 * synchronously with 400, 403, 404 or 409, and the same request gets the same answer again
 * (https://learn.microsoft.com/azure/azure-resource-manager/templates/deployment-tutorial-pipeline#troubleshoot
 * and the REST reference of Deployments - Create Or Update); 408, 429 and 5xx are transient and
 * retried.
 */
export function isRefusal(status: number | undefined): boolean {
  return status === 400 || status === 401 || status === 403 || status === 404 || status === 409 || status === 422;
}

/** The permanent error of a refused request: ARM's code and the root cause's message. */
export function refusal(what: string, e: unknown): TargetRefusedError {
  const body = armErrorOf(e) ?? { code: 'RequestRefused', message: (e as Error).message };
  const { code, message } = describeArmError(body);
  const top = body.code && body.code !== code ? ` (${body.code})` : '';
  return new TargetRefusedError(code, `${what} was refused by Azure Resource Manager${top}: ${code}: ${message}`);
}
