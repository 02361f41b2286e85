/**
 * The selector fields of a Tetragon policy beyond matchArgs and matchBinaries:
 * for each, whether leaving it out keeps counting faithful (actions that
 * enforce: yes) or not (filters tally cannot evaluate: the hook is dropped).
 */
import { Fields, Node } from './reader';
import { HookCx } from './hook-context';
import { filters } from './filter-list';
import { oneOf } from './problems';

/** Filters tally cannot evaluate, and why. Leaving one out would count calls the policy does not select. */
const FILTERS_NOT_EVALUATED: ReadonlyArray<[string, string]> = [
  ['matchPIDs', 'tally does not filter on process IDs'],
  ['matchData', 'tally does not read data fields'],
  ['matchReturnArgs', 'tally does not filter on return values'],
  ['matchParentBinaries', 'tally does not track parent binaries'],
  ['matchNamespaceChanges', 'tally does not track namespace changes'],
  ['matchCapabilityChanges', 'tally does not track capability changes'],
  ['matchWorkloads', 'tally does not select workloads by label'],
  ['macros', 'tally does not expand selector macros'],
];

/** Every action of Tetragon's CRD. */
const ACTIONS = [
  'Post', 'Sigkill', 'Override', 'GetUrl', 'DnsLookup', 'NoPost', 'Signal', 'TrackSock', 'UntrackSock',
  'NotifyEnforcer', 'CleanupEnforcerNotification', 'Set',
] as const;
type Action = (typeof ACTIONS)[number];

/** Every field of Tetragon's ActionSelector. */
const ACTION_KEYS = [
  'action', 'argUrl', 'argFqdn', 'argError', 'argSig', 'argSock', 'argIndex', 'argValue', 'argRegs', 'argNewSymbol',
  'argNewAddr', 'argNewOffset', 'rateLimit', 'rateLimitScope', 'kernelStackTrace', 'userStackTrace', 'imaHash',
] as const;

/** Why an action other than Post/NoPost can be left out without changing what is counted. */
const WHY_ACTION_LEFT_OUT: Readonly<Record<Exclude<Action, 'Post' | 'NoPost'>, string>> = {
  Sigkill: 'tally counts and never enforces',
  Override: 'tally counts and never enforces',
  Signal: 'tally counts and never enforces',
  NotifyEnforcer: 'tally counts and never enforces',
  CleanupEnforcerNotification: 'tally counts and never enforces',
  GetUrl: 'tally makes no requests when a selector matches',
  DnsLookup: 'tally makes no requests when a selector matches',
  TrackSock: 'tally does not track sockets for later events',
  UntrackSock: 'tally does not track sockets for later events',
  Set: 'tally does not write to the traced program',
};

/** Judges the Tetragon-only fields of one selector. */
export function judgeSelector(f: Fields, cx: HookCx): void {
  const label = f.get('label');
  if (label) cx.ignored(label, 'it names the selector in Tetragon\'s status and events');
  for (const [key, why] of FILTERS_NOT_EVALUATED) {
    const n = f.get(key);
    if (n && n.value !== null && !(Array.isArray(n.value) && n.value.length === 0)) {
      cx.unsupported(n, 'a filter tally evaluates (matchArgs, matchBinaries, matchNamespaces, matchCapabilities)', `${why}, and without this filter the hook would count calls the policy does not select`, 'drop', true);
    }
  }
  for (const key of ['matchActions', 'matchReturnActions']) {
    for (const a of filters(f, key, Number.MAX_SAFE_INTEGER)) judgeAction(a, cx);
  }
}

function judgeAction(node: Node, cx: HookCx): void {
  const f = node.mapping(ACTION_KEYS);
  const actionNode = f?.require('action', oneOf(ACTIONS));
  const action = actionNode?.choice(ACTIONS);
  if (!f || !actionNode || !action) return;
  if (action === 'Post') {
    // Post is what tally counts; its options only shape the events Tetragon sends.
    for (const key of ['rateLimit', 'rateLimitScope']) {
      const n = f.get(key);
      if (n) cx.ignored(n, 'it limits the events Tetragon sends, and tally counts every match');
    }
    for (const key of ['kernelStackTrace', 'userStackTrace', 'imaHash']) {
      const n = f.get(key);
      if (n) cx.ignored(n, 'it adds to the events Tetragon sends, and tally exports no events');
    }
    return;
  }
  if (action === 'NoPost') {
    cx.unsupported(actionNode, 'Post', 'NoPost keeps this selector\'s matches from being reported, and tally\'s selectors cannot express that exclusion', 'drop');
    return;
  }
  cx.unsupported(actionNode, 'Post', WHY_ACTION_LEFT_OUT[action], 'keep');
}
