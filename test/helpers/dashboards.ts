/**
 * What dashboards/ holds, read the way Grafana and Prometheus read it: the
 * Grafana dashboards' panels (rows' nested panels included), each panel's
 * queries, the template variables, a query with its variables substituted
 * as Grafana's Prometheus data source substitutes them; and the alert rules.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import { PROJECT_ROOT } from '../../src/util/paths';

export const DASHBOARD_DIR = path.join(PROJECT_ROOT, 'dashboards');
export const ALERT_RULES = path.join(DASHBOARD_DIR, 'alerts.yaml');

/** A dashboard's JSON, read field by field as the checks need. */
export type Json = Record<string, any>;

export interface Dashboard {
  file: string;
  json: Json;
}

export interface Panel {
  dashboard: string;
  json: Json;
}

export interface Query {
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
  instant: boolean;
  format?: string;
}

export function loadDashboards(dir = DASHBOARD_DIR): Dashboard[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ file, json: JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Json }));
}

/** Every panel, rows included, with the panels of collapsed rows. */
export function panelsOf(d: Dashboard): Panel[] {
  const out: Panel[] = [];
  for (const p of d.json.panels ?? []) {
    out.push({ dashboard: d.file, json: p });
    for (const inner of p.panels ?? []) out.push({ dashboard: d.file, json: inner });
  }
  return out;
}

export function queriesOf(d: Dashboard): Query[] {
  return panelsOf(d).flatMap((p) =>
    (p.json.targets ?? []).map((t: Json) => ({
      dashboard: d.file,
      panel: p.json.title,
      refId: t.refId,
      expr: t.expr,
      instant: t.instant === true,
      format: t.format,
    })),
  );
}

export function variablesOf(d: Dashboard): Json[] {
  return d.json.templating?.list ?? [];
}

/** The PromQL of a query variable: label_values(SELECTOR, LABEL), as Grafana parses it. */
export function labelValuesQuery(v: Json): { selector: string; label: string } {
  const q: string = typeof v.query === 'string' ? v.query : v.query?.query;
  const m = /^label_values\((?:(.+),\s*)?([a-zA-Z_$][a-zA-Z0-9_]*)\)\s*$/.exec(q ?? '');
  if (!m || !m[1]) throw new Error(`variable ${v.name}: expected label_values(selector, label), found ${JSON.stringify(q)}`);
  return { selector: m[1], label: m[2] };
}

/** A variable's selection: "All", or the values picked. */
export type Selection = 'All' | string[];

/** Grafana's prometheusSpecialRegexEscape: a value used inside a regex matcher's string. */
export function regexEscape(value: string): string {
  return value.replace(/\\/g, '\\\\\\\\').replace(/[$^*{}[\]'+?.()|]/g, '\\\\$&');
}

/** How Grafana's Prometheus data source renders a multi-value variable. */
function renderVariable(v: Json, sel: Selection): string {
  if (sel === 'All') {
    if (typeof v.allValue !== 'string' || v.allValue === '') throw new Error(`variable ${v.name} has no allValue`);
    return v.allValue;
  }
  if (!v.multi && !v.includeAll) {
    if (sel.length !== 1) throw new Error(`variable ${v.name} takes one value`);
    return sel[0].replace(/\\/g, '\\\\').replace(/'/g, "\\\\'");
  }
  const escaped = sel.map(regexEscape);
  return escaped.length === 1 ? escaped[0] : `(${escaped.join('|')})`;
}

export interface Builtins {
  /** $__interval: the query step, in seconds. */
  intervalS: number;
  /** The data source's scrape interval, in seconds (for $__rate_interval). */
  scrapeIntervalS: number;
  /** $__range: the dashboard's time range, in seconds. */
  rangeS: number;
}

/**
 * Substitutes the dashboard's variables (by their selections) and Grafana's
 * built-ins in a query; throws if a $ is left over.
 */
export function interpolate(expr: string, vars: Json[], selections: Record<string, Selection>, b: Builtins): string {
  const rateInterval = Math.max(b.intervalS + b.scrapeIntervalS, 4 * b.scrapeIntervalS);
  const builtins: Record<string, string> = {
    __rate_interval: `${rateInterval}s`,
    __interval: `${b.intervalS}s`,
    __interval_ms: String(b.intervalS * 1000),
    __range: `${b.rangeS}s`,
    __range_s: String(b.rangeS),
    __range_ms: String(b.rangeS * 1000),
  };
  const out = expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare)!;
    if (name in builtins) return builtins[name];
    const v = vars.find((x) => x.name === name);
    if (!v) throw new Error(`unknown variable ${whole} in ${expr}`);
    const sel = selections[name];
    if (sel === undefined) throw new Error(`no selection for variable ${name}`);
    return renderVariable(v, sel);
  });
  if (out.includes('$')) throw new Error(`a $ is left after substitution: ${out}`);
  return out;
}

const PROMQL_KEYWORDS = new Set([
  ...['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'and', 'or', 'unless', 'inf', 'nan'],
  // Aggregation operators, which may precede by (...) rather than their parenthesis.
  ...['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile'],
]);

/**
 * Metric names a PromQL expression reads (the identifiers that are neither
 * functions, keywords, label names nor numbers), and its __name__ regexes.
 */
export function metricNamesIn(expr: string): { names: string[]; nameRegexes: string[] } {
  const nameRegexes = [...expr.matchAll(/__name__=~"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]);
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // strings
    .replace(/\{[^{}]*\}/g, '{}') // label matchers
    .replace(/\[[^\]]*\]/g, '[]') // ranges
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '$1 ()'); // label lists
  const names = new Set<string>();
  for (const m of bare.matchAll(/(?<![\w:.])([a-zA-Z_:][\w:]*)(?!\s*\(|[\w:])/g)) {
    if (!PROMQL_KEYWORDS.has(m[1].toLowerCase())) names.add(m[1]);
  }
  return { names: [...names], nameRegexes };
}

/** The label matchers of each selector `{...}` in a PromQL expression. */
export function selectorsIn(expr: string): string[] {
  return [...expr.matchAll(/\{((?:[^{}"]|"(?:[^"\\]|\\.)*")*)\}/g)].map((m) => m[1]);
}

/** Series Prometheus makes itself, not the agent. */
export const PROMETHEUS_OWN = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped', 'scrape_samples_post_metric_relabeling', 'scrape_series_added']);

/** The metric family a series name belongs to: a histogram's _bucket, _sum and _count series belong to it. */
export function familyOf(name: string, families: ReadonlySet<string>): string | undefined {
  if (families.has(name)) return name;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  return m && families.has(m[1]) ? m[1] : undefined;
}

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** The rules of a Prometheus rules file, all groups together. */
export function loadAlertRules(file = ALERT_RULES): AlertRule[] {
  const doc = yaml.load(fs.readFileSync(file, 'utf8')) as Json;
  return (doc.groups as Json[]).flatMap((g) => g.rules as AlertRule[]);
}
