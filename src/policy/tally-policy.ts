/**
 * tally's own format: apiVersion tally.dev/v1alpha1, kind MetricsPolicy.
 * Hooks use Tetragon's vocabulary and each declares the metrics it feeds.
 */
import { Hook } from './model';
import { Fields } from './reader';
import { HookFormat, readHooks } from './hooks';
import { MetricRegistry, readMetrics } from './metrics';
import { readMetadata } from './metadata';
import { LIMITS } from './limits';

const COMMON_KEYS = ['args', 'selectors', 'metrics', 'taskContext', 'fallbackFor'] as const;
const KEYS = {
  kprobes: ['call', 'syscall', 'return', ...COMMON_KEYS, 'returnArg', 'ignore'],
  tracepoints: ['subsystem', 'event', 'raw', ...COMMON_KEYS],
  uprobes: ['path', 'symbols', 'return', ...COMMON_KEYS, 'returnArg'],
  usdts: ['path', 'provider', 'name', ...COMMON_KEYS],
  // A packet has no task: taskContext means nothing there.
  packets: ['direction', 'args', 'selectors', 'metrics', 'fallbackFor'],
  // A MetricsPolicy hooks LSM hooks' security_ functions under kprobes.
  lsmhooks: [],
} as const;
/** The hook lists a MetricsPolicy's spec may have. */
const HOOK_LISTS = ['kprobes', 'tracepoints', 'uprobes', 'usdts', 'packets'];

export interface PolicyBody {
  name?: string;
  namespace?: string;
  hooks: Hook[];
}

export const SPEC_EXPECTED = 'a mapping with kprobes, tracepoints, uprobes, usdts or packets';

/** Some hook list is written with something in it. */
export function declaresHooks(spec: Fields, keys: readonly string[]): boolean {
  return keys.some((k) => {
    const v = spec.get(k)?.value;
    return v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0);
  });
}

export function readMetricsPolicy(root: Fields): PolicyBody {
  const { name } = readMetadata(root, 'label', 'forbidden');
  const spec = root.require('spec', SPEC_EXPECTED)?.mapping(HOOK_LISTS, SPEC_EXPECTED);
  if (!spec) return { name, hooks: [] };
  const registry = new MetricRegistry();
  const format: HookFormat = { format: 'tally', keys: KEYS, finish: (hook, _cx, info) => readMetrics(hook, info, registry) };
  const hooks = readHooks(spec, format);
  // A hook list that is there but malformed has its own error; only say "none" when there is nothing.
  if (!declaresHooks(spec, HOOK_LISTS)) {
    spec.node.error('at least one hook under kprobes, tracepoints, uprobes, usdts or packets', undefined, 'none');
  } else if (hooks.length > LIMITS.hooksPerPolicy) {
    spec.node.error(`at most ${LIMITS.hooksPerPolicy} hooks (tally's limit per policy; each uprobe symbol is a hook)`, 'split the policy', `${hooks.length}`);
  }
  return { name, hooks };
}
