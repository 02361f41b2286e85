/**
 * How a hook attached, or why it could not, in words: for the log, the
 * policy's status and `tally policy check`.
 */
import * as fs from 'node:fs';
import { AttachAttempt, HookResult } from './loader';

/** Capabilities an attach type needs beyond BPF and PERFMON, by name and bit (linux/capability.h). */
const NEEDS: Readonly<Record<string, { name: string; bit: number }>> = { cgroup_skb: { name: 'CAP_NET_ADMIN', bit: 12 } };

let effective: bigint | undefined;

/** Whether this process has the capability (CapEff of /proc/self/status); true when that cannot be read. */
function hasCapability(bit: number): boolean {
  if (effective === undefined) {
    try {
      effective = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 'ffffffffffffffff'}`);
    } catch {
      effective = (1n << 64n) - 1n;
    }
  }
  return ((effective >> BigInt(bit)) & 1n) === 1n;
}

/**
 * One hook in a short line: how it attached, or why it could not, with the
 * attach types the startup probe found missing named once rather than with
 * their probe's whole refusal (the agent logs the kernel's attach support
 * once at startup; describeHookChain has every detail).
 */
export function describeHook(r: HookResult): string {
  if (r.program) return `${r.hook}: ${r.attachType}`;
  const byProbe = r.refused.filter((a) => a.program === 'probe');
  // Refused for want of a capability this process lacks: say which, not "not offered". (An EPERM
  // with every capability is the kernel's own refusal, as fentry's on some lockdown setups.)
  const isDenied = (a: AttachAttempt): boolean => /\bEPERM\b/.test(a.reason) && NEEDS[a.attachType] !== undefined && !hasCapability(NEEDS[a.attachType].bit);
  const denied = byProbe.filter(isDenied).map((a) => `${a.attachType} refused to this process at startup (EPERM: it needs ${NEEDS[a.attachType].name})`);
  const probed = byProbe.filter((a) => !isDenied(a)).map((a) => a.attachType);
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
