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

const COMMON_KEYS = ['args', 'selectors', 'metrics'] as const;
const KEYS = {
  kprobes: ['call', 'syscall', 'return', ...COMMON_KEYS, 'returnArg', 'ignore'],
  tracepoints: ['subsystem', 'event', 'raw', ...COMMON_KEYS],
  uprobes: ['path', 'symbols', 'return', ...COMMON_KEYS, 'returnArg'],
} as const;

export interface PolicyBody {
  name?: string;
  namespace?: string;
  hooks: Hook[];
}

export function readMetricsPolicy(root: Fields): PolicyBody {
  const { name } = readMetadata(root, 'label', 'forbidden');
  const spec = root.require('spec', 'a mapping with kprobes, tracepoints or uprobes')?.mapping(Object.keys(KEYS));
  if (!spec) return { name, hooks: [] };
  const registry = new MetricRegistry();
  const format: HookFormat = { format: 'tally', keys: KEYS, finish: (hook, _cx, info) => readMetrics(hook, info, registry) };
  const hooks = readHooks(spec, format);
  const declared = Object.keys(KEYS).some((k) => Array.isArray(spec.get(k)?.value) && (spec.get(k)?.value as unknown[]).length > 0);
  if (!declared) {
    spec.node.error('at least one hook under kprobes, tracepoints or uprobes', undefined, 'none');
  } else if (hooks.length > LIMITS.hooksPerPolicy) {
    spec.node.error(`at most ${LIMITS.hooksPerPolicy} hooks (tally's limit per policy; each uprobe symbol is a hook)`, 'split the policy', `${hooks.length}`);
  }
  return { name, hooks };
}
