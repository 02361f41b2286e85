/**
 * The two text formats: Prometheus 0.0.4, and OpenMetrics 1.0 for scrapers
 * that ask for it.
 *
 * OpenMetrics differs where a parser notices: a counter family is named
 * without its `_total` suffix (its samples keep it), `le` bounds are floats,
 * and the exposition ends with `# EOF`.
 */
import { Family, Sample } from './model';
import { escapeHelp, escapeLabelValue, formatNumber } from './number-format';

export type TextFormat = 'prometheus' | 'openmetrics';

function labelString(labels: Sample['labels'], openMetrics: boolean): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    let value = String(v);
    // OpenMetrics wants a float in le; 0.0.4 scrapers read "1" and "1.0" alike.
    if (openMetrics && k === 'le' && /^-?\d+$/.test(value)) value += '.0';
    parts.push(`${k}="${escapeLabelValue(value)}"`);
  }
  return parts.length ? `{${parts.join(',')}}` : '';
}

function familyName(f: Family, openMetrics: boolean): string {
  return openMetrics && f.type === 'counter' ? f.name.replace(/_total$/, '') : f.name;
}

function sampleName(f: Family, s: Sample, openMetrics: boolean): string {
  // An OpenMetrics counter's sample must carry _total even when the family does not.
  if (openMetrics && f.type === 'counter' && !s.name.endsWith('_total')) return `${s.name}_total`;
  return s.name;
}

export function encodeText(families: Family[], format: TextFormat): string {
  const om = format === 'openmetrics';
  const out: string[] = [];
  for (const f of families) {
    const name = familyName(f, om);
    out.push(`# HELP ${name} ${escapeHelp(f.help, om)}`);
    out.push(`# TYPE ${name} ${om && f.type === 'untyped' ? 'unknown' : f.type}`);
    for (const s of f.samples) out.push(`${sampleName(f, s, om)}${labelString(s.labels, om)} ${formatNumber(s.value)}`);
  }
  if (om) out.push('# EOF');
  return out.join('\n') + '\n';
}
