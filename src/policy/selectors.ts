/**
 * Selectors: in-kernel filters of a hook. Selectors OR; within one, every
 * filter ANDs. This module reads the filters both formats share (matchArgs,
 * in match-args.ts, and matchBinaries) and tally's Kubernetes matchNamespaces;
 * Tetragon's other selector fields are judged in tetragon-selectors.ts.
 */
import { BinaryFilter, BinaryOperator, NamespaceFilter, Selector } from './model';
import { Fields, Node } from './reader';
import { ArgDecl } from './args';
import { HookCx } from './hook-context';
import { LIMITS } from './limits';
import { oneOf } from './problems';
import { parseAll, readArgFilter } from './match-args';
import { parseString } from './values';
import { DNS_LABEL, DNS_LABEL_EXPECTED } from './metadata';
import { readTaskFilters } from './task-filters';
import { filters } from './filter-list';

const TALLY_SELECTOR_KEYS = ['matchArgs', 'matchBinaries', 'matchNamespaces'] as const;
/** Every field of Tetragon's KProbeSelector. */
const TETRAGON_SELECTOR_KEYS = [
  'label', 'matchPIDs', 'matchArgs', 'matchData', 'matchActions', 'matchReturnArgs', 'matchReturnActions',
  'matchBinaries', 'matchParentBinaries', 'matchNamespaces', 'matchNamespaceChanges', 'matchCapabilities',
  'matchCapabilityChanges', 'matchWorkloads', 'macros',
] as const;

/** The selectors of a hook, and each one's fields for the format-specific checks. */
export function readSelectors(hook: Fields, args: ArgDecl[], cx: HookCx): { selectors: Selector[]; fields: Fields[] } {
  const selectors: Selector[] = [];
  const all: Fields[] = [];
  for (const item of hook.get('selectors')?.list(LIMITS.selectorsPerHook, 'selectors') ?? []) {
    const f = item.mapping(cx.format === 'tetragon' ? TETRAGON_SELECTOR_KEYS : TALLY_SELECTOR_KEYS);
    if (!f) continue;
    all.push(f);
    const s: Selector = { matchArgs: [], matchBinaries: [], matchNamespaces: [] };
    for (const n of filters(f, 'matchArgs', LIMITS.matchArgsPerSelector)) {
      const a = readArgFilter(n, args, cx);
      if (a) s.matchArgs.push(a);
    }
    for (const n of filters(f, 'matchBinaries', LIMITS.matchBinariesPerSelector)) {
      const b = readBinaryFilter(n, cx);
      if (b) s.matchBinaries.push(b);
    }
    if (cx.format === 'tally') {
      for (const n of filters(f, 'matchNamespaces', LIMITS.matchNamespacesPerSelector)) {
        const ns = readNamespaceFilter(n);
        if (ns) s.matchNamespaces.push(ns);
      }
    } else {
      const tasks = readTaskFilters(f, cx);
      if (tasks.length) s.matchTask = tasks;
    }
    selectors.push(s);
  }
  return { selectors, fields: all };
}

const BINARY_OPS: readonly BinaryOperator[] = ['In', 'NotIn', 'Prefix', 'NotPrefix', 'Postfix', 'NotPostfix'];

function readBinaryFilter(node: Node, cx: HookCx): BinaryFilter | undefined {
  const f = node.mapping(cx.format === 'tetragon' ? ['operator', 'values', 'followChildren'] : ['operator', 'values']);
  if (!f) return undefined;
  const operator = f.require('operator', oneOf(BINARY_OPS))?.choice(BINARY_OPS);
  const valueNodes = f.require('values', 'a list of executable paths')?.list(LIMITS.valuesPerFilter, 'values', 1);
  const follow = f.get('followChildren');
  if (follow?.boolean()) {
    cx.unsupported(follow, 'followChildren: false', 'tally matches the binary of the calling process only and does not follow its children', 'drop');
  }
  if (!operator || !valueNodes) return undefined;
  const values = parseAll(valueNodes, (_n, t) => parseString(t, 'a non-empty path'));
  if (!values) return undefined;
  if (operator !== 'Postfix' && operator !== 'NotPostfix') {
    valueNodes.forEach((n, i) => {
      if (!values[i].startsWith('/')) n.report('warning', 'an absolute path', 'binary paths are absolute, so this value never matches');
    });
  }
  return { operator, values };
}

function readNamespaceFilter(node: Node): NamespaceFilter | undefined {
  const f = node.mapping(['operator', 'values']);
  if (!f) return undefined;
  const operator = f.require('operator', 'one of In, NotIn')?.choice(['In', 'NotIn'] as const);
  const valueNodes = f.require('values', 'a list of Kubernetes namespaces')?.list(LIMITS.valuesPerFilter, 'values', 1);
  if (!operator || !valueNodes) return undefined;
  const values: string[] = [];
  for (const n of valueNodes) {
    const v = n.string(DNS_LABEL_EXPECTED);
    if (v !== undefined && !DNS_LABEL.test(v)) n.error(DNS_LABEL_EXPECTED);
    else if (v !== undefined) values.push(v);
  }
  return values.length === valueNodes.length ? { operator, values } : undefined;
}
