/**
 * How a hook attached, or why it could not, in words: for the log, the
 * policy's status and `tally policy check`.
 */
import { HookResult } from './loader';

/**
 * One hook in a short line: how it attached, or why it could not, with the
 * attach types the startup probe found missing named once rather than with
 * their probe's whole refusal (the agent logs the kernel's attach support
 * once at startup; describeHookChain has every detail).
 */
export function describeHook(r: HookResult): string {
  if (r.program) return `${r.hook}: ${r.attachType}`;
  const probed = r.refused.filter((a) => a.program === 'probe').map((a) => a.attachType);
  const other = r.refused.filter((a) => a.program !== 'probe').map((a) => `${a.attachType} ${a.program} refused at ${a.stage}: ${a.code} ${a.reason}`);
  const parts = [...(probed.length ? [`${[...new Set(probed)].join(', ')} not offered by this kernel`] : []), ...other];
  return `${r.hook}: not attached; ${parts.join('; ') || 'no candidate programs'}`;
}

/** Every attach type the hook tried, in order, with the kernel's or libbpf's answer to each: for --verbose and debug logs. */
export function describeHookChain(r: HookResult): string {
  const tried = r.refused.map((a) => `${a.attachType} ${a.program} refused at ${a.stage}: ${a.code} ${a.reason}`);
  if (r.program) return `${r.hook}: attached via ${r.attachType} (${r.program})${tried.length ? `; ${tried.join('; ')}` : ''}`;
  return `${r.hook}: not attached; ${tried.join('; ') || 'no candidate programs'}`;
}
