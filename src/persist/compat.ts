/**
 * Whether an agent may adopt what a previous one left pinned
 * (docs/restart.md). Adopting means reading the previous agent's keys with
 * its tables: allowed only when every key and value has the same shape
 * (the layout stamp) and the label sets were made under the same label
 * filter. Anything else is replaced, never misread.
 */
import { HandoverState } from './state';

export interface CurrentAgent {
  layout: string;
  labelFilter: string;
}

/** What the pin directory held: nothing, a state, or one that could not be read (why). */
export type Found = { kind: 'empty' } | { kind: 'state'; state: HandoverState } | { kind: 'unreadable'; reason: string };

export type Decision = { action: 'fresh' } | { action: 'adopt'; state: HandoverState } | { action: 'replace'; reason: string };

export function decide(found: Found, current: CurrentAgent): Decision {
  if (found.kind === 'empty') return { action: 'fresh' };
  if (found.kind === 'unreadable') return { action: 'replace', reason: found.reason };
  const s = found.state;
  if (s.layout !== current.layout) {
    return { action: 'replace', reason: `the pinned maps have layout ${s.layout} (tally ${s.version}), this tally reads layout ${current.layout}` };
  }
  if (s.labelFilter !== current.labelFilter) {
    return { action: 'replace', reason: `the pinned label sets were made under --metrics-label-filter ${s.labelFilter}, this agent runs with ${current.labelFilter}` };
  }
  return { action: 'adopt', state: s };
}
