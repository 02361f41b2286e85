/**
 * The metrics of a MetricsPolicy hook: names and types as Prometheus wants
 * them and what each event adds or observes (extra labels: labels.ts). A
 * metric fed by several hooks must be declared identically in each
 * (MetricRegistry).
 */
import { ExtraLabel, INT_ARG_TYPES, Metric, MetricType, MetricValue, TETRAGON_EVENTS_METRIC } from './model';
import { Fields, Node } from './reader';
import { ArgDecl } from './args';
import { HookInfo } from './hook-context';
import { LIMITS } from './limits';
import { readLabels, readName } from './labels';
import { reservedMetricName } from '../metrics/reserved-names';

const UNIT = /^[a-z][a-z0-9_]*$/;
const METRIC_KEYS = ['name', 'help', 'unit', 'type', 'value', 'labels'] as const;

const isInt = (d: ArgDecl | undefined): boolean => (INT_ARG_TYPES as readonly string[]).includes(d?.arg?.type ?? '');

/** A metric as read, with its node for later cross-hook checks. */
interface ReadMetric {
  metric: Metric;
  node: Node;
}

/**
 * The metrics of one policy by name. A name used by several hooks must mean
 * one thing: the same type, help, unit and labels (the labels' sources, arg
 * and field, may differ per hook: write and pwrite64 both feed one counter).
 */
export class MetricRegistry {
  private readonly first = new Map<string, ReadMetric>();

  /** The first declaration of `name`, if any. */
  get(name: string): ReadMetric | undefined {
    return this.first.get(name);
  }

  /** Records a metric, or reports how it differs from the first declaration of its name. */
  add(rm: ReadMetric): void {
    const prev = this.first.get(rm.metric.name);
    if (!prev) {
      this.first.set(rm.metric.name, rm);
      return;
    }
    const a = prev.metric;
    const b = rm.metric;
    const unit = (m: Metric): string => (m.unit === undefined ? 'no unit' : JSON.stringify(m.unit));
    const diffs: Array<[string, string, string]> = [
      ['help', JSON.stringify(a.help), JSON.stringify(b.help)],
      ['unit', unit(a), unit(b)],
      ['labels', describeLabels(a), describeLabels(b)],
    ];
    for (const [key, x, y] of diffs) {
      if (x !== y) rm.node.child(key, undefined).error(`${x}, as declared at ${prev.node.ref}`, SAME_EVERYWHERE, y);
    }
  }
}

const SAME_EVERYWHERE = 'a metric fed by several hooks is declared identically in each';

/** The labels' parts that must agree across hooks: name, cap and overflow value. */
function describeLabels(m: Metric): string {
  if (!m.labels.length) return 'no labels';
  const cap = (l: ExtraLabel): string => (l.maxValues !== undefined ? `maxValues ${l.maxValues}` : `prefixes ${JSON.stringify(l.prefixes)}`);
  return `labels ${m.labels.map((l) => `${l.name} (${cap(l)}, overflowValue ${JSON.stringify(l.overflowValue)})`).join(', ')}`;
}

/** The `metrics` of a hook; undefined when any is invalid. */
export function readMetrics(hook: Fields, info: HookInfo, registry: MetricRegistry): Metric[] | undefined {
  const items = hook.require('metrics', 'a list of metrics (a hook counts nothing without one)')
    ?.list(LIMITS.metricsPerHook, 'metrics', 1);
  if (!items) return undefined;
  const out: ReadMetric[] = [];
  let ok = true;
  for (const item of items) {
    const m = readMetric(item, info, registry);
    const twin = m && out.find((o) => o.metric.name === m.name);
    if (m && twin) item.child('name', m.name).error('each metric once per hook', `it is already declared at ${twin.node.ref}`, `"${m.name}" again`);
    if (m && !twin) {
      out.push({ metric: m, node: item });
      registry.add({ metric: m, node: item });
    } else ok = false;
  }
  return ok ? out.map((r) => r.metric) : undefined;
}

function readMetric(node: Node, info: HookInfo, registry: MetricRegistry): Metric | undefined {
  const f = node.mapping(METRIC_KEYS);
  if (!f) return undefined;
  const nameNode = f.require('name', 'a Prometheus metric name');
  const name = nameNode && readName(nameNode, 'metric');
  const helpNode = f.require('help', 'a one-line description');
  const help = helpNode?.string();
  if (help !== undefined && (help.includes('\n') || help.length > LIMITS.helpLength)) {
    helpNode?.error(`one line of at most ${LIMITS.helpLength} characters`);
  }
  const typeNode = f.get('type');
  const type = typeNode ? typeNode.choice(['counter', 'histogram'] as const) : 'counter';
  const valueNode = f.get('value');
  const value = valueNode ? readValue(valueNode, info) : { kind: 'count' as const };
  const unitNode = f.get('unit');
  let unit = unitNode?.string();
  if (unit !== undefined && !UNIT.test(unit)) unit = unitNode?.error('a unit in lowercase letters, digits and _ (e.g. bytes, seconds)');
  if (value?.kind === 'latency') {
    if (unit !== undefined && unit !== 'seconds') unitNode?.error('seconds (latency is measured in seconds)');
    unit = 'seconds';
  }
  if (value?.kind === 'count' && type === 'histogram') {
    (valueNode ?? f.node).error('a value for a histogram to observe: {arg: INDEX}, return or latency', 'a histogram of count would only ever observe 1',
      valueNode ? undefined : 'no value (count)');
  }
  // A second declaration with another type is reported as that, not as a name that does not suit the type.
  let nameOk = false;
  if (name !== undefined && nameNode && type !== undefined) {
    const prev = registry.get(name);
    if (prev && prev.metric.type !== type) {
      (typeNode ?? f.node).error(`"${prev.metric.type}", as declared at ${prev.node.ref}`, SAME_EVERYWHERE, typeNode ? typeNode.found : `no type (so "${type}")`);
    } else nameOk = checkName(nameNode, name, type, unit);
  }
  const labels = readLabels(f, info);
  if (!nameOk || name === undefined || type === undefined || help === undefined || value === undefined || labels === undefined) return undefined;
  const metric: Metric = { name, help, type, value, labels, constLabels: {} };
  if (unit !== undefined) metric.unit = unit;
  return metric;
}

/**
 * Counters end in _total; histograms must not collide with the _bucket/_sum/_count series; a unit is a suffix.
 * tally's own names are refused here, not when registering, so the checker and the agent agree (metrics/reserved-names.ts).
 */
function checkName(node: Node, name: string, type: MetricType, unit: string | undefined): boolean {
  if (name === TETRAGON_EVENTS_METRIC) {
    node.error('a name of your own', `${TETRAGON_EVENTS_METRIC} is the metric tally gives Tetragon policies`);
    return false;
  }
  const reserved = reservedMetricName(name);
  if (reserved) {
    node.error('a name of your own', `${reserved}; rename yours, e.g. with your own prefix`);
    return false;
  }
  const base = name.replace(/_total$/, '');
  if (type === 'counter' && !name.endsWith('_total')) {
    node.error('a counter name ending in _total', `write "${name}_total"`);
    return false;
  }
  if (type === 'histogram' && /_(total|bucket|sum|count)$/.test(name)) {
    node.error('a histogram name not ending in _total, _bucket, _sum or _count', 'Prometheus adds _bucket, _sum and _count to it');
    return false;
  }
  if (unit !== undefined && !base.endsWith(`_${unit}`)) {
    const want = type === 'counter' ? `_${unit}_total` : `_${unit}`;
    node.error(`a name ending in ${want} (its unit is ${unit})`, `write "${base}_${unit}${type === 'counter' ? '_total' : ''}"`);
    return false;
  }
  return true;
}

const VALUE_EXPECTED = 'count, return, latency or {arg: INDEX}';

function readValue(node: Node, info: HookInfo): MetricValue | undefined {
  const v = node.value;
  if (v === 'count') return { kind: 'count' };
  if (v === 'return' || v === 'latency') {
    if (info.kind === 'tracepoint' || info.kind === 'packet') return node.error(`count or {arg: INDEX} (a ${info.kind} hook has no return)`);
    if (!info.return) return node.error('count or {arg: INDEX} (the hook has no return: true)', `${v} needs return: true on the hook`);
    if (v === 'latency') return { kind: 'latency' };
    if (!info.returnArg) return node.error('count, latency or {arg: INDEX} (the hook has no returnArg)', 'declare returnArg: {index: 0, type: …} with an integer type');
    if (!(INT_ARG_TYPES as readonly string[]).includes(info.returnArg.type)) {
      return node.error(`count, latency or {arg: INDEX} (the returnArg is ${info.returnArg.type})`, 'return needs an integer returnArg type');
    }
    return { kind: 'return' };
  }
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const f = node.mapping(['arg'], VALUE_EXPECTED);
    const argNode = f?.require('arg', 'the index of a declared integer arg');
    const index = argNode?.integer(0, Number.MAX_SAFE_INTEGER, 'an arg index');
    if (!argNode || index === undefined) return undefined;
    const decl = info.args.find((d) => d.index === index);
    if (!decl || !isInt(decl)) {
      const ints = info.args.filter(isInt).map((d) => d.index);
      return argNode.error(`the index of a declared integer arg (${ints.length ? ints.join(', ') : 'this hook declares no integer arg'})`,
        decl?.arg ? `arg ${index} has type ${decl.arg.type}` : undefined, `${index}`);
    }
    decl.used = true;
    return { kind: 'arg', index };
  }
  return node.error(VALUE_EXPECTED);
}
