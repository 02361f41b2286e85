/**
 * How a hook attached, or why it could not, in words: for the log, the
 * policy's status and `tally policy check`.
 */
import { HookResult } from './loader';

/** Capabilities an attach type needs beyond BPF and PERFMON. */
const NEEDS: Readonly<Record<string, string>> = { cgroup_skb: 'CAP_NET_ADMIN' };

/**
 * One hook in a short line: how it attached, or why it could not, with the
 * attach types the startup probe found missing named once rather than with
 * their probe's whole refusal (the agent logs the kernel's attach support
 * once at startup; describeHookChain has every detail).
 */
export function describeHook(r: HookResult): string {
  if (r.program) return `${r.hook}: ${r.attachType}`;
  const byProbe = r.refused.filter((a) => a.program === 'probe');
  // The kernel has it, but not for this process: say which capability, not "not offered".
  const denied = byProbe.filter((a) => /\bEPERM\b/.test(a.reason)).map((a) => `${a.attachType} refused to this process at startup (EPERM${NEEDS[a.attachType] ? `: it needs ${NEEDS[a.attachType]}` : ': a capability is missing'})`);
  const probed = byProbe.filter((a) => !/\bEPERM\b/.test(a.reason)).map((a) => a.attachType);
  const other = r.refused.filter((a) => a.program !== 'probe').map((a) => `${a.attachType} ${a.program} refused at ${a.stage}: ${a.code} ${a.reason}`);
  const parts = [...new Set(denied), ...(probed.length ? [`${[...new Set(probed)].join(', ')} not offered by this kernel`] : []), ...other];
  return `${r.hook}: not attached; ${parts.join('; ') || 'no candidate programs'}`;
}

/** Every attach type the hook tried, in order, with the kernel's or libbpf's answer to each: for --verbose and debug logs. */
export function describeHookChain(r: HookResult): string {
  const tried = r.refused.map((a) => `${a.attachType} ${a.program} refused at ${a.stage}: ${a.code} ${a.reason}`);
  if (r.program) return `${r.hook}: attached via ${r.attachType} (${r.program})${tried.length ? `; ${tried.join('; ')}` : ''}`;
  return `${r.hook}: not attached; ${tried.join('; ') || 'no candidate programs'}`;
}
