/**
 * `tally policy check --load`: every hook of a policy compiled, loaded into
 * the kernel, attached and detached again, on maps of its own. What the
 * kernel refuses is reported where the hook is declared.
 */
import { describeHook } from '../bpf/loader';
import { FILTER_LABELS } from '../labels/label-filter';
import { Policy, Problem } from '../policy/model';
import { KernelFeatures } from './kernel-features';
import { loadPolicyHook } from './hook-loader';

export interface TrialOptions {
  features: KernelFeatures;
  syscalls: Readonly<Record<string, number>>;
  kernelBtfPath?: string;
}

export function trialLoad(policy: Policy, opts: TrialOptions): Problem[] {
  const problems: Problem[] = [];
  policy.hooks.forEach((hook, i) => {
    const { result, loaded } = loadPolicyHook(
      hook,
      { features: opts.features, syscalls: opts.syscalls, metricId: () => 16 + i, constLabel: () => i },
      // The widest filter: the program the agent would load under any filter verifies too.
      { filter: FILTER_LABELS, kernelBtfPath: opts.kernelBtfPath },
    );
    loaded?.object.close();
    if (result.program) return;
    const o = hook.origin;
    problems.push({
      file: policy.file,
      line: o.line,
      column: o.column,
      path: o.path,
      expected: 'a hook this kernel can attach',
      found: describeHook(result),
      severity: 'error',
      message: `expected a hook this kernel can attach, found ${describeHook(result)}`,
    });
  });
  return problems;
}
