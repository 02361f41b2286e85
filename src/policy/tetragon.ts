/**
 * Tetragon's TracingPolicy and TracingPolicyNamespaced (apiVersion
 * cilium.io/v1alpha1), read unchanged. Each hook tally can load counts the
 * events it matches in one implicit metric, tally_policy_events_total, with
 * labels policy and hook.
 *
 * Every field of Tetragon's CRD is understood. What tally does not implement
 * is reported where it is written: leaving it out either keeps counting
 * faithful (enforcement, event decoration: the hook stays) or does not (a
 * filter tally cannot evaluate: the hook is dropped). See hook-context.ts.
 */
import { Hook, Metric, PolicyKind, TETRAGON_EVENTS_METRIC } from './model';
import { Fields, Node } from './reader';
import { HookCx } from './hook-context';
import { HookFormat, readHooks } from './hooks';
import { judgeSelector } from './tetragon-selectors';
import { readMetadata } from './metadata';
import { declaresHooks, PolicyBody, SPEC_EXPECTED } from './tally-policy';
import { LIMITS } from './limits';
import { readLists } from './tetragon-lists';

const ARG_HOOK_KEYS = ['message', 'args', 'selectors', 'tags'] as const;
/** Every field of Tetragon's KProbeSpec, TracepointSpec, UProbeSpec, LsmHookSpec and UsdtSpec. */
const KEYS = {
  kprobes: ['call', 'return', 'syscall', ...ARG_HOOK_KEYS, 'data', 'returnArg', 'returnArgAction', 'ignore'],
  tracepoints: ['subsystem', 'event', ...ARG_HOOK_KEYS, 'raw'],
  uprobes: ['path', 'btfPath', 'symbols', 'offsets', 'addrs', 'refCtrOffsets', ...ARG_HOOK_KEYS, 'data', 'return', 'returnArg', 'binaryDigests', 'ignore'],
  lsmhooks: ['hook', ...ARG_HOOK_KEYS],
  usdts: ['path', 'provider', 'name', ...ARG_HOOK_KEYS],
  // tally's own: Tetragon has no packet hooks.
  packets: [],
} as const;

/** Every field of Tetragon's TracingPolicySpec. */
const SPEC_KEYS = [
  'kprobes', 'tracepoints', 'loader', 'uprobes', 'lsmhooks', 'usdts', 'fentries', 'podSelector', 'containerSelector',
  'hostSelector', 'nodeSelector', 'lists', 'enforcers', 'options', 'selectorsMacros',
] as const;

const HOOK_KINDS = 'a hook kind tally implements (kprobes, tracepoints, uprobes, usdts, lsmhooks)';

/** Hook lists tally does not implement, how to name their entries, and why. */
const OTHER_HOOKS: ReadonlyArray<[string, (f: Record<string, unknown>) => string, string]> = [
  ['fentries', (f) => `fentry:${f.call}`, 'tally attaches kernel functions through kprobes; write this hook under kprobes'],
];

/** Spec fields that select workloads or nodes: without them every hook would count more than the policy selects. */
const WORKLOAD_SELECTORS: ReadonlyArray<[string, string]> = [
  ['podSelector', 'tally does not select pods by label'],
  ['containerSelector', 'tally does not select containers by field'],
  ['hostSelector', 'tally does not tell host processes from pods\' in a selector'],
  ['nodeSelector', 'tally does not select nodes by label'],
];

const HELP = 'Events matched by a hook of a Tetragon tracing policy, counted in the kernel by tally.';

export function readTracingPolicy(root: Fields, kind: Exclude<PolicyKind, 'MetricsPolicy'>): PolicyBody {
  const meta = readMetadata(root, 'subdomain', kind === 'TracingPolicyNamespaced' ? 'required' : 'ignored');
  const spec = root.require('spec', SPEC_EXPECTED)?.mapping(SPEC_KEYS, SPEC_EXPECTED);
  if (!spec) return { ...meta, hooks: [] };
  judgeSpec(spec);
  let hooks = readHooks(spec, { ...FORMAT, lists: readLists(spec) });
  let policyWide = false;
  for (const [key, why] of WORKLOAD_SELECTORS) if (judgeWorkloadSelector(spec, key, why)) policyWide = true;
  if (policyWide) hooks = [];
  for (const h of hooks) {
    for (const m of h.metrics) m.constLabels = { policy: meta.name ?? '', hook: h.name };
    if (kind === 'TracingPolicyNamespaced' && meta.namespace) onlyIn(h, meta.namespace);
  }
  if (hooks.length > LIMITS.hooksPerPolicy) {
    spec.node.error(`at most ${LIMITS.hooksPerPolicy} hooks (tally's limit per policy; each uprobe symbol is a hook)`, undefined, `${hooks.length}`);
  } else if (!hooks.length && !policyWide && spec.node.doc.errors === 0) {
    const left = declaresHooks(spec, [...Object.keys(KEYS), ...OTHER_HOOKS.map(([k]) => k)]);
    spec.node.error('at least one hook tally can load', left ? 'the other problems say why each hook was left out' : undefined, 'none');
  }
  return { ...meta, hooks };
}

const FORMAT: HookFormat = {
  format: 'tetragon',
  keys: KEYS,
  finish(hook: Fields, cx: HookCx, info, selectors: Fields[]): Metric[] {
    for (const key of ['message', 'tags']) {
      const n = hook.get(key);
      if (n) cx.ignored(n, `Tetragon puts the ${key === 'tags' ? 'tags' : 'message'} in events, and tally exports no events`);
    }
    const data = hook.get('data');
    if (data) cx.ignored(data, 'data only feeds matchData filters and events');
    const action = hook.get('returnArgAction');
    if (action?.string()) cx.unsupported(action, 'no returnArgAction', 'tally does not track sockets for later events', 'keep');
    // Tetragon's CRD: "ReturnArg not specified with Return=true".
    if (info.return && !hook.has('returnArg')) hook.node.child('returnArg', undefined).error('a returnArg, as Tetragon requires with return: true', undefined, 'no such field');
    if (info.kind === 'uprobe') judgeUprobe(hook, cx);
    for (const s of selectors) judgeSelector(s, cx);
    return [{ name: TETRAGON_EVENTS_METRIC, help: HELP, type: 'counter', value: { kind: 'count' }, labels: [], constLabels: {} }];
  },
};

function judgeUprobe(hook: Fields, cx: HookCx): void {
  for (const key of ['offsets', 'addrs']) {
    const n = hook.get(key);
    if (n) cx.unsupported(n, 'symbols', `tally attaches uprobes by symbol, not by ${key === 'addrs' ? 'address' : 'offset'}`, 'drop', true);
  }
  const digests = hook.get('binaryDigests');
  if (digests) cx.unsupported(digests, 'no binaryDigests', 'tally does not verify binaries, so it would count calls in binaries Tetragon skips', 'drop', true);
  const btf = hook.get('btfPath');
  if (btf) cx.ignored(btf, 'it only serves resolving struct fields, which tally does not do');
  const ref = hook.get('refCtrOffsets');
  if (ref) cx.ignored(ref, 'it only enables USDT semaphores');
  const ignore = hook.get('ignore');
  if (ignore) {
    ignore.mapping(['digestVerificationFailure']);
    cx.ignored(ignore, 'it only concerns binaryDigests');
  }
}

/** Spec-level fields that are not hooks. */
function judgeSpec(spec: Fields): void {
  for (const [key, hookName, why] of OTHER_HOOKS) {
    const items = spec.get(key);
    for (const item of (items && items.value !== null ? items.list(Number.MAX_SAFE_INTEGER, key) : undefined) ?? []) {
      const f = item.value !== null && typeof item.value === 'object' ? (item.value as Record<string, unknown>) : {};
      new HookCx('tetragon', hookName(f)).unsupported(item, HOOK_KINDS, why, 'drop', false, `an entry of ${key}`);
    }
  }
  const enforcers = spec.get('enforcers');
  if (enforcers) {
    enforcers.report('unsupported', 'no enforcers', 'tally counts and never enforces; they are left out and every hook still counts what it matches', 'enforcers', true);
  }
  for (const opt of spec.get('options')?.list(Number.MAX_SAFE_INTEGER, 'options') ?? []) {
    const f = opt.mapping(['name', 'value']);
    const name = f?.require('name', 'an option name')?.string();
    if (name !== undefined) {
      opt.report('warning', 'fields that affect counting', 'Tetragon\'s options tune how it attaches hooks, and tally chooses its own way, so it is ignored', `option ${name}`);
    }
  }
  for (const [key, why] of [['selectorsMacros', 'macros only serve selectors\' macros field, which is reported where used']]) {
    const n = spec.get(key);
    if (n) n.report('warning', 'fields that affect counting', `${why}, so it is ignored`, key, true);
  }
  const loader = spec.get('loader');
  if (loader?.boolean()) loader.report('warning', 'fields that affect counting', 'loader events are Tetragon events, and tally exports no events, so it is ignored', 'loader', true);
}

/** True when the selector is set and narrows what counts; then the policy cannot load. */
function judgeWorkloadSelector(spec: Fields, key: string, why: string): boolean {
  const n: Node | undefined = spec.get(key);
  if (!n || n.value === null) return false;
  // nodeSelector {} selects every node: nothing to honour.
  const empty = typeof n.value === 'object' && !Array.isArray(n.value) && Object.keys(n.value).length === 0;
  if (key === 'nodeSelector' && empty) return false;
  n.report('unsupported', `no ${key}`, `${why}, and without it every hook would count more than the policy selects; so no hook of this policy is loaded`, key, true);
  return true;
}

/**
 * A TracingPolicyNamespaced counts only what pods of its namespace do: every
 * selector gets matchNamespaces In [namespace], and a hook without selectors
 * one with only that, which the kernel evaluates like any other.
 */
function onlyIn(hook: Hook, namespace: string): void {
  const constraint = { operator: 'In' as const, values: [namespace] };
  if (hook.selectors.length === 0) hook.selectors.push({ matchArgs: [], matchBinaries: [], matchNamespaces: [] });
  for (const s of hook.selectors) s.matchNamespaces.push(constraint);
}
