/**
 * `tally policy check --load`: every hook of a policy compiled, loaded into
 * the kernel, attached and detached again, on maps of its own. What the
 * kernel refuses is reported where the hook is declared.
 */
import { HookResult } from '../bpf/loader';
import { describeHook, describeHookChain } from '../bpf/hook-report';
import { WIDEST_LABEL_FILTER } from '../labels/label-filter';
import { Hook, Policy, Problem } from '../policy/model';
import { KernelFeatures } from './kernel-features';
import { loadPolicyHook } from './hook-loader';
import { native } from '../native/addon';

export interface TrialOptions {
  features: KernelFeatures;
  syscalls: Readonly<Record<string, number>>;
  kernelBtfPath?: string;
  /** Every attach type each failed hook tried, with the kernel's answer (policy check --verbose). */
  verbose?: boolean;
}

export async function trialLoad(policy: Policy, opts: TrialOptions): Promise<Problem[]> {
  const attached = new Set<string>();
  const failed = new Map<string, { hook: Hook; result: HookResult }>();
  // Hooks first, then the fallbacks of those that could not attach, as the agent does.
  const order = [...policy.hooks.filter((h) => !h.fallbackFor), ...policy.hooks.filter((h) => h.fallbackFor)];
  for (const hook of order) {
    if (hook.fallbackFor && attached.has(hook.fallbackFor)) continue;
    const i = policy.hooks.indexOf(hook);
    const { result, loaded } = await loadPolicyHook(
      hook,
      { features: opts.features, syscalls: opts.syscalls, metricId: () => 16 + i, pendingMetricId: () => 1016 + i, constLabel: () => i },
      // The widest filter: the program the agent would load under any filter verifies too.
      { filter: WIDEST_LABEL_FILTER, kernelBtfPath: opts.kernelBtfPath },
    );
    loaded?.close();
    if (result.program) {
      attached.add(hook.name);
      if (hook.fallbackFor) failed.delete(hook.fallbackFor);
    } else {
      failed.set(hook.name, { hook, result });
    }
  }
  // libbpf freed megabytes per hook; glibc would keep them for a process that checks a thousand policies.
  native().mallocTrim();
  const describe = opts.verbose ? describeHookChain : describeHook;
  return [...failed.values()].map(({ hook, result }) => {
    const o = hook.origin;
    return {
      file: policy.file,
      line: o.line,
      column: o.column,
      path: o.path,
      expected: 'a hook this kernel can attach',
      found: describe(result),
      severity: 'error' as const,
      message: `expected a hook this kernel can attach, found ${describe(result)}`,
    };
  });
}
