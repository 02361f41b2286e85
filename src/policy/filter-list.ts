/**
 * The entries of a selector's filter list (matchArgs, matchBinaries,
 * matchNamespaces, …). Its own module: selectors.ts reads every kind of
 * filter, and the readers of single kinds (task-filters.ts,
 * tetragon-selectors.ts) need this without importing selectors.ts back.
 */
import { Fields, Node } from './reader';

/** The entries of a filter list; a field written with nothing (`matchPIDs:`) filters nothing, as in Tetragon. */
export function filters(f: Fields, key: string, max: number): Node[] {
  const n = f.get(key);
  if (!n || n.value === null) return [];
  return n.list(max, `${key} entries`) ?? [];
}
