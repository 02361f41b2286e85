/**
 * BENCHMARKS.md's hook-overhead block: a line saying how it was measured,
 * then one table per workload, each starting "#### name:". A run of some
 * workloads replaces their tables and keeps the others'.
 */
/** Tables by workload: "#### name: ..." up to the next one. */
function tablesOf(block: string): { head: string; tables: Map<string, string> } {
  const [head, ...rest] = block.split(/\n(?=#### )/);
  return { head, tables: new Map(rest.map((t) => [/^#### ([^:]+):/.exec(t)![1], t.trimEnd()])) };
}

/** The old block with the tables the new one has replaced, in the old order. */
export function mergeTables(old: string, fresh: string): string {
  const before = tablesOf(old);
  const now = tablesOf(fresh);
  const merged = [...before.tables].map(([name, t]) => now.tables.get(name) ?? t);
  for (const [name, t] of now.tables) if (!before.tables.has(name)) merged.push(t);
  return [now.head.trimEnd(), '', ...merged.flatMap((t) => [t, ''])].join('\n').trimEnd();
}
