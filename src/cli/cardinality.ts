/**
 * `tally cardinality [--top N] [--server ADDR]`: asks a running agent for
 * GET /debug/cardinality and prints one block per metric: its series against
 * the limit, its roll-up by level, its kernel entries and churn, then the
 * label values with the most series. Needs no privileges.
 */
import { parseArgs } from 'node:util';
import type { CardinalityDebug } from '../collectors/cardinality-debug';
import type { MetricCardinality } from '../cardinality/cardinality-report';

export const CARDINALITY_USAGE = 'usage: tally cardinality [--top N] [--server ADDR] (ADDR: host:port of the agent\'s metrics server, default 127.0.0.1:2112, or an http(s) URL)';

export class CardinalityUsageError extends Error {}

export function parseCardinalityArgs(argv: string[]): { top: number; url: string } {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, strict: true, options: { top: { type: 'string', default: '5' }, server: { type: 'string', default: '127.0.0.1:2112' } } }));
  } catch (e) {
    throw new CardinalityUsageError(`${(e as Error).message.split('\n')[0]}; ${CARDINALITY_USAGE}`);
  }
  const top = Number(values.top);
  if (!/^\d+$/.test(values.top!) || top < 1 || top > 1000) throw new CardinalityUsageError(`--top "${values.top}" must be a whole number from 1 to 1000`);
  const server = values.server!;
  const base = /^https?:\/\//.test(server) ? server.replace(/\/+$/, '') : `http://${server}`;
  return { top, url: `${base}/debug/cardinality?top=${top}` };
}

/** The table, one block per metric. */
export function formatCardinality(d: CardinalityDebug): string[] {
  const lines: string[] = [];
  for (const m of d.metrics) lines.push(...formatMetric(m), '');
  if (d.metrics.length === 0) lines.push('no kernel metrics');
  return lines;
}

function formatMetric(m: MetricCardinality): string[] {
  const rolled = m.rolledUp.map((l) => `${l.level} ${l.series}/${l.labelSets}`).join(', ');
  const lines = [
    m.metric,
    `  series ${m.series} own + ${m.rolledUp.slice(0, -1).reduce((a, l) => a + l.series, 0)} rolled up, limit ${m.limit} (own up to ${m.ownLimit})`,
    `  rolled up (series/label sets): ${rolled}`,
    `  kernel entries ${m.kernelEntries}; churn per minute: ${m.churn.createdPerMinute} created, ${m.churn.retiredPerMinute} retired`,
  ];
  const width = Math.max(0, ...Object.keys(m.topValues).map((l) => l.length));
  for (const [label, values] of Object.entries(m.topValues)) {
    lines.push(`  top ${label.padEnd(width)}  ${values.map((v) => `${v.value} (${v.series})`).join(', ')}`);
  }
  return lines;
}

export async function runCardinality(argv: string[], out: (line: string) => void): Promise<number> {
  const { url } = parseCardinalityArgs(argv);
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    throw new CardinalityUsageError(`cannot reach ${url}: ${((e as Error).cause as Error)?.message ?? (e as Error).message}`);
  }
  if (res.status !== 200) throw new CardinalityUsageError(`${url} answered ${res.status}: ${(await res.text()).trim()}`);
  for (const line of formatCardinality((await res.json()) as CardinalityDebug)) out(line);
  return 0;
}
