import type { WaveView } from '../../../../libs/contracts/src';
import type { ParsedArgs } from '../args';
import { command, group } from '../command';
import type { Output } from '../output';
import { progressReporter } from '../progress';
import { Unsuccessful, watch } from '../watch';

// States in which a wave still moves on its own; any other state is where it ended.
const MOVING = new Set(['Pending', 'Queued', 'Running', 'Canary', 'Canaries', 'InProgress']);
const SUCCEEDED = new Set(['Succeeded', 'Completed']);
const wavePath = (id: string) => `/v1/admin/waves/${encodeURIComponent(id)}`;

/** The API may answer `{ wave }` or the wave itself. */
function waveOf(body: WaveView | { wave: WaveView }): WaveView {
  return 'wave' in body ? body.wave : body;
}

function printWave(out: Output, w: WaveView): void {
  out.fields([
    ['ID', w.id],
    ['Action', w.action],
    ['State', w.state],
    ['Clusters', `${w.total} (${w.succeeded} succeeded, ${w.failed} failed)`],
  ]);
  if (!w.clusters.length) return;
  out.line();
  out.table(['CLUSTER', 'STATE', 'OPERATION'], w.clusters.map((c) => [c.clusterId, c.state, c.operationId]));
}

/** `params` from --params (a JSON object) and --consul-version; undefined when neither is given. */
function waveParams(a: ParsedArgs, action: string): Record<string, unknown> | undefined {
  const raw = a.string('params');
  let params: Record<string, unknown> | undefined;
  if (raw !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch (e) {
      throw a.fail(`--params is not valid JSON (${(e as Error).message}); give an object, e.g. --params '{"consulVersion":"1.8.7"}'`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw a.fail(`--params must be a JSON object, e.g. '{"consulVersion":"1.8.7"}'`);
    params = parsed as Record<string, unknown>;
  }
  const version = a.string('consul-version');
  if (version !== undefined) {
    if (version === '') throw a.fail('--consul-version must not be empty');
    if (params?.consulVersion !== undefined && params.consulVersion !== version) {
      throw a.fail(`--consul-version ${version} contradicts params.consulVersion ${JSON.stringify(params.consulVersion)} from --params`);
    }
    params = { ...params, consulVersion: version };
  }
  if (action === 'upgrade' && typeof params?.consulVersion !== 'string') throw a.fail('an upgrade wave needs --consul-version V (or params.consulVersion in --params)');
  return params;
}

const start = command({
  name: 'start',
  summary: 'Start a maintenance wave over the clusters a selector picks: canaries first, then the rest',
  options: {
    action: { type: 'string', value: 'ACTION', required: true, description: 'what to do to each cluster, e.g. snapshot or upgrade' },
    selector: { type: 'string', value: 'JSON', required: true, description: `which clusters: state, version, region, health, clusterIds, e.g. '{"version":"1.8.7"}'` },
    canaries: { type: 'string', value: 'N', required: true, description: 'clusters done first, alone, before the rest' },
    'max-in-flight': { type: 'string', value: 'N', required: true, description: 'clusters changed at once' },
    'max-failures': { type: 'string', value: 'N', required: true, description: 'failures after which the wave stops' },
    params: { type: 'string', value: 'JSON', description: `the action's parameters as a JSON object, e.g. '{"consulVersion":"1.8.7"}' for upgrade` },
    'consul-version': { type: 'string', value: 'V', description: 'the Consul version an upgrade wave moves to (sets params.consulVersion)' },
    wait: { type: 'boolean', description: 'wait until the wave ends, showing its progress' },
  },
  async run(ctx) {
    const a = ctx.args;
    const selector = a.json('selector');
    if (typeof selector !== 'object' || selector === null || Array.isArray(selector)) throw a.fail('--selector must be a JSON object');
    const action = a.required('action');
    const params = waveParams(a, action);
    const api = ctx.api();
    const body = {
      action,
      selector,
      ...(params === undefined ? {} : { params }),
      canaries: a.integer('canaries', 0),
      maxInFlight: a.integer('max-in-flight', 1),
      maxFailures: a.integer('max-failures', 0),
    };
    const started = await api.post<WaveView | { wave: WaveView }>('/v1/admin/waves', body);
    const wave = waveOf(started);
    if (!a.flag('wait')) {
      return ctx.output.result(started, () => ctx.output.line(`Wave ${wave.id} (${wave.action}) is ${wave.state} over ${wave.total} clusters; follow it with 'hcs admin waves get ${wave.id}'.`));
    }
    const ended = await watch({
      load: async () => waveOf(await api.get<WaveView | { wave: WaveView }>(wavePath(wave.id))),
      progress: (w) => ({
        percent: w.total ? ((w.succeeded + w.failed) / w.total) * 100 : 100,
        state: w.state,
        detail: `${w.succeeded}/${w.total} succeeded, ${w.failed} failed`,
      }),
      finished: (w) => !MOVING.has(w.state),
      reporter: progressReporter(ctx.io.stderr),
    });
    if (!SUCCEEDED.has(ended.state)) {
      if (!ctx.output.json) printWave(ctx.output, ended);
      throw new Unsuccessful(`wave ${ended.id} ${ended.state}: ${ended.failed} of ${ended.total} clusters failed`, ended);
    }
    ctx.output.result(ended, () => printWave(ctx.output, ended));
  },
});

const get = command({
  name: 'get',
  summary: 'Show a wave and where each of its clusters stands',
  positionals: ['ID'],
  async run(ctx) {
    const body = await ctx.api().get<WaveView | { wave: WaveView }>(wavePath(ctx.args.positionals[0]!));
    ctx.output.result(body, () => printWave(ctx.output, waveOf(body)));
  },
});

export const waves = group('waves', 'Run an action across many clusters in waves: canaries, then a bounded number at a time', [start, get]);
