/**
 * Prometheus metric names to OpenTelemetry names and units, by one rule:
 *
 *   1. a counter's `_total` goes (OTLP says "monotonic sum" instead);
 *   2. a unit suffix from UNIT_SUFFIXES goes into the unit
 *      (`_bytes` -> `By`, `_seconds` -> `s`); without one the unit is empty;
 *   3. the first two `_` become `.`: namespace.area.rest, so
 *      tally_tcp_sent_bytes_total -> tally.tcp.sent (By),
 *      tally_tcp_send_size_bytes -> tally.tcp.send_size (By),
 *      tally_bpf_map_entries -> tally.bpf.map_entries.
 *
 * The rule is chosen so that the OpenTelemetry Collector's Prometheus
 * exporters, which add the unit and `_total` back (prometheusName below),
 * give the Prometheus name tally serves on /metrics: the two views of a
 * metric stay joinable. When the rule would not round-trip (the unit word
 * also appears earlier in the name, say), the unit stays in the name.
 */

export type PromKind = 'counter' | 'gauge' | 'histogram';

/** Prometheus base-unit suffixes and their UCUM units, as OpenTelemetry writes them. */
export const UNIT_SUFFIXES: ReadonlyArray<readonly [suffix: string, ucum: string]> = [
  ['bytes', 'By'],
  ['seconds', 's'],
];

export interface OtlpName {
  name: string;
  /** UCUM unit; empty when the metric counts things. */
  unit: string;
}

const dotted = (base: string): string => base.replace('_', '.').replace('_', '.');

/** The OpenTelemetry name and unit of a Prometheus metric. */
export function otlpName(promName: string, kind: PromKind): OtlpName {
  const base = kind === 'counter' && promName.endsWith('_total') ? promName.slice(0, -'_total'.length) : promName;
  const candidates: OtlpName[] = [];
  for (const [suffix, ucum] of UNIT_SUFFIXES) {
    if (!base.endsWith(`_${suffix}`)) continue;
    const stem = base.slice(0, -suffix.length - 1);
    candidates.push({ name: dotted(stem), unit: ucum }, { name: dotted(base), unit: ucum });
  }
  candidates.push({ name: dotted(base), unit: '' });
  return candidates.find((c) => prometheusName(c.name, c.unit, kind) === promName) ?? candidates[candidates.length - 1];
}

const PROM_UNITS: Readonly<Record<string, string>> = Object.fromEntries(UNIT_SUFFIXES.map(([s, u]) => [u, s]));

/**
 * The name the OpenTelemetry Collector's prometheus and prometheusremotewrite
 * exporters give an OTLP metric (with metric suffixes on, their default):
 * tokens split at anything not alphanumeric, the unit's word appended unless
 * a token already is it, `total` moved to the end of a monotonic sum.
 * Units other than By and s are not used by tally, so only those are mapped.
 */
export function prometheusName(name: string, unit: string, kind: PromKind): string {
  let tokens = name.split(/[^a-zA-Z0-9:]+/).filter((t) => t !== '');
  const word = unit === '' || /[{}]/.test(unit) ? '' : (PROM_UNITS[unit] ?? unit);
  if (word && !tokens.includes(word)) tokens.push(word);
  if (kind === 'counter') tokens = [...tokens.filter((t) => t !== 'total'), 'total'];
  return tokens.join('_');
}
