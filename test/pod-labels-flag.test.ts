/**
 * --metrics-pod-labels without a kernel, table-driven: Kubernetes keys
 * sanitised into Prometheus label names, renames, the collisions refused at
 * startup (and what the message tells to do), the join of a pod's labels,
 * where roll-up drops them, and their OTLP attributes.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { isKubeLabelKey, PodLabels, sanitizeLabelName } from '../src/labels/pod-labels';
import { LabelFilter } from '../src/labels/label-filter';
import { DEFAULT_ROLLUP_ORDER, parseRollupOrder, RollupPlan } from '../src/cardinality/rollup-plan';
import { parseFlags, UsageError } from '../src/cli/args';
import { podLabelAttributes, seriesAttributes } from '../src/exporters/otlp/attributes';

describe('pod label names', () => {
  const SANITISED: Array<[string, string]> = [
    ['app', 'app'],
    ['app.kubernetes.io/name', 'app_kubernetes_io_name'],
    ['helm.sh/chart', 'helm_sh_chart'],
    ['pod-template-hash', 'pod_template_hash'],
    ['Team_Name', 'Team_Name'],
    ['1password.com/vault', '_1password_com_vault'],
    ['9', '_9'],
  ];
  for (const [key, name] of SANITISED) {
    it(`${key} -> ${name}`, () => {
      assert.equal(sanitizeLabelName(key), name);
      assert.ok(isKubeLabelKey(key));
    });
  }

  const NOT_KEYS = ['', '-app', 'app-', 'a/b/c', 'Example.com/app', 'x'.repeat(64), 'app name', '/app', 'app/'];
  for (const key of NOT_KEYS) it(`"${key}" is not a Kubernetes label key`, () => assert.equal(isKubeLabelKey(key), false));
});

describe('--metrics-pod-labels', () => {
  const ACCEPTED: Array<[string, Array<[string, string]>]> = [
    ['', []],
    ['app', [['app', 'app']]],
    ['app.kubernetes.io/name,team', [['app.kubernetes.io/name', 'app_kubernetes_io_name'], ['team', 'team']]],
    [' team , app ', [['team', 'team'], ['app', 'app']]],
    ['app.kubernetes.io/name=app', [['app.kubernetes.io/name', 'app']]],
    // A rename is how a key that would take a name of tally's own gets in.
    ['namespace=pod_namespace,pod=pod_pod', [['namespace', 'pod_namespace'], ['pod', 'pod_pod']]],
  ];
  for (const [flag, labels] of ACCEPTED) {
    it(`"${flag}" is accepted`, () => {
      assert.deepEqual(PodLabels.parse(flag).labels.map((l) => [l.key, l.name]), labels);
    });
  }

  const REFUSED: Array<[string, RegExp]> = [
    ['namespace', /pod label "namespace" would be exported as "namespace", which is tally's own label \(--metrics-label-filter\); rename it, e.g\. --metrics-pod-labels namespace=pod_namespace/],
    ['app,container', /"container" would be exported as "container", which is tally's own label/],
    ['overflow', /"overflow", which is the label tally marks rolled-up series with; rename it, e.g\. --metrics-pod-labels overflow=pod_overflow/],
    ['le', /which is the label Prometheus names histogram buckets with/],
    ['team=workload', /pod label "team" would be exported as "workload", which is tally's own label/],
    ['example.com/team,example.com.team', /pod labels "example.com\/team" and "example.com.team" would both be exported as "example_com_team"; rename one, e.g\. --metrics-pod-labels example.com\/team,example.com.team=pod_example_com_team/],
    ['app,team=app', /pod labels "app" and "team" would both be exported as "app"/],
    ['app,app', /names pod label "app" twice/],
    ['app,,team', /has an empty entry/],
    ['app name', /"app name" is not a Kubernetes label key/],
    ['app=9lives', /names the label "9lives", which is not a Prometheus label name/],
    ['app=__x', /names the label "__x", which is not a Prometheus label name/],
  ];
  for (const [flag, message] of REFUSED) {
    it(`"${flag}" is refused at startup, naming what and how to fix it`, () => {
      assert.throws(() => parseFlags(['--metrics-pod-labels', flag], {}), (e: Error) => {
        assert.ok(e instanceof UsageError, `${e.constructor.name}: ${e.message}`);
        assert.match(e.message, message);
        return true;
      });
    });
  }

  it('a pod\'s labels joined: only the allowlisted ones, present and non-empty, in the flag\'s order', () => {
    const p = PodLabels.parse('team,app.kubernetes.io/name,tier');
    assert.deepEqual(p.select({ 'app.kubernetes.io/name': 'web', team: 'shop', 'pod-template-hash': 'abc', tier: '' }), { team: 'shop', app_kubernetes_io_name: 'web' });
    assert.deepEqual(Object.keys(p.select({ 'app.kubernetes.io/name': 'web', team: 'shop' })), ['team', 'app_kubernetes_io_name']);
    assert.deepEqual(p.select(undefined), {});
  });

  it('a metric\'s own labels named like pod labels are found', () => {
    const p = PodLabels.parse('status,team');
    assert.deepEqual(p.collisions(['status', 'reason']), ['status']);
    assert.deepEqual(p.collisions(undefined), []);
  });
});

describe('roll-up with pod labels', () => {
  const team = PodLabels.parse('team,app.kubernetes.io/name');
  const LEVELS: Array<{ filter: string; order?: string; levels: string[] }> = [
    // pod_labels right before pod: dropped in pod's level, which would otherwise merge nothing.
    { filter: 'namespace,workload,pod,binary', levels: ['binary', 'workload', 'namespace'] },
    { filter: 'namespace,workload,pod,container,binary', levels: ['pod', 'binary', 'workload', 'namespace'] },
    // Without pod, the pod labels are a level of their own, dropped first.
    { filter: 'namespace,workload', levels: ['workload', 'namespace'] },
    { filter: 'namespace,workload,binary', levels: ['binary', 'workload', 'namespace'] },
    // An order that keeps them past pod: a level that keeps them without pod.
    { filter: 'namespace,workload,pod', order: 'pod,pod_labels,workload,namespace', levels: ['pod_labels', 'workload', 'namespace'] },
    // An order without pod_labels gets it before pod.
    { filter: 'namespace,workload,pod', order: 'pod,workload,namespace', levels: ['workload', 'namespace'] },
  ];
  for (const c of LEVELS) {
    it(`filter ${c.filter}${c.order ? `, order ${c.order}` : ''}: levels ${c.levels.join(', ')}`, () => {
      const filter = LabelFilter.parse(c.filter);
      const plan = new RollupPlan(filter, parseRollupOrder(c.order ?? DEFAULT_ROLLUP_ORDER.join(','), filter, team), 25, team);
      assert.deepEqual(plan.levels, c.levels);
    });
  }

  it('each level drops the pod labels with or before pod, and keeps them with the coarser labels when ordered so', () => {
    const labels = { namespace: 'shop', workload: 'web', pod: 'web-1', container: 'app', team: 'a', app_kubernetes_io_name: 'web', binary: '/bin/x' };
    const filter = LabelFilter.parse('namespace,workload,pod,container,binary');
    const plan = new RollupPlan(filter, DEFAULT_ROLLUP_ORDER, 25, team);
    assert.deepEqual(plan.rolledLabels(labels, 0), { namespace: 'shop', workload: 'web', pod: 'web-1', team: 'a', app_kubernetes_io_name: 'web', binary: '/bin/x', overflow: 'true' });
    assert.deepEqual(plan.rolledLabels(labels, 1), { namespace: 'shop', workload: 'web', binary: '/bin/x', overflow: 'true' });
    const kept = new RollupPlan(LabelFilter.parse('namespace,workload,pod'), ['pod', 'pod_labels', 'workload', 'namespace'], 25, team);
    assert.deepEqual(kept.rolledLabels(labels, 0), { namespace: 'shop', workload: 'web', container: 'app', team: 'a', app_kubernetes_io_name: 'web', binary: '/bin/x', overflow: 'true' });
  });

  it('the flag\'s default order names pod_labels before pod', () => {
    assert.deepEqual([...DEFAULT_ROLLUP_ORDER], ['container', 'pod_labels', 'pod', 'binary', 'workload', 'namespace']);
    const parsed = parseFlags(['--metrics-pod-labels', 'team'], {});
    assert.equal(parsed.kind, 'run');
    if (parsed.kind === 'run') assert.deepEqual(parsed.config.rollup.levels, ['binary', 'workload', 'namespace']);
  });
});

describe('pod labels over OTLP', () => {
  it('are k8s.pod.label.<key>, with the Kubernetes key as it is, whatever their series name', () => {
    const attrs = podLabelAttributes(PodLabels.parse('app.kubernetes.io/name,team=owner'));
    assert.deepEqual(attrs, { app_kubernetes_io_name: 'k8s.pod.label.app.kubernetes.io/name', owner: 'k8s.pod.label.team' });
    assert.deepEqual(seriesAttributes({ namespace: 'shop', pod: 'web-1', app_kubernetes_io_name: 'web', owner: 'a', overflow: 'true' }, undefined, attrs), {
      'k8s.namespace.name': 'shop',
      'k8s.pod.name': 'web-1',
      'k8s.pod.label.app.kubernetes.io/name': 'web',
      'k8s.pod.label.team': 'a',
      'otel.metric.overflow': true,
    });
  });
});
