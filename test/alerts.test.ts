/**
 * The alert rules in dashboards/alerts.yaml: promtool checks them (and the
 * Helm chart's byte-identical copy) and runs their unit tests
 * (dashboards/tests/alerts.test.yaml), which must make every alert fire and
 * not fire; every alert has a summary, a description and a runbook that
 * exists in docs/runbooks.md, and reads only documented metrics.
 * test/dashboard-queries.test.ts evaluates them against the real agent.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as yaml from 'js-yaml';
import { PROJECT_ROOT } from '../src/util/paths';
import { PROMETHEUS_OWN, familyOf, loadAlertRules, metricNamesIn } from './helpers/dashboards';

const RULES = path.join(PROJECT_ROOT, 'dashboards', 'alerts.yaml');
const CHART_RULES = path.join(PROJECT_ROOT, 'helm', 'tally', 'files', 'alerts.yaml');
const UNIT_TESTS = path.join(PROJECT_ROOT, 'dashboards', 'tests', 'alerts.test.yaml');
const RUNBOOKS = path.join(PROJECT_ROOT, 'docs', 'runbooks.md');

type Obj = Record<string, any>;

/** The alerts the issue asks for. */
const REQUIRED = ['TallyTcpRetransmitRatioHigh', 'TallySeriesOverflow', 'TallyBpfMapNearCapacity', 'TallyPolicyError', 'TallyTargetDown', 'TallyBpfOverheadHigh'];

/** GitHub's anchor of a Markdown heading. */
const anchorOf = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

const rules = loadAlertRules(RULES);

describe('alert rules', () => {
  it('the Helm chart ships a byte-identical copy (sync with npm run dashboards:sync)', () => {
    assert.ok(fs.readFileSync(RULES).equals(fs.readFileSync(CHART_RULES)), 'helm/tally/files/alerts.yaml differs from dashboards/alerts.yaml: run npm run dashboards:sync');
  });

  for (const file of [RULES, CHART_RULES]) {
    it(`pass promtool check rules: ${path.relative(PROJECT_ROOT, file)}`, () => {
      const p = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      assert.equal(p.status, 0, `promtool check rules ${file}:\n${p.stdout}${p.stderr}`);
      assert.match(p.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`), p.stdout);
    });
  }

  it('pass their unit tests: promtool test rules dashboards/tests/alerts.test.yaml', () => {
    const p = spawnSync('promtool', ['test', 'rules', UNIT_TESTS], { encoding: 'utf8' });
    assert.equal(p.status, 0, `promtool test rules:\n${p.stdout}${p.stderr}`);
    assert.match(p.stdout, /SUCCESS/);
  });

  it('are the alerts asked for, each unique, all alerting rules', () => {
    const names = rules.map((r) => r.alert);
    assert.equal(new Set(names).size, names.length, `alert names are unique: ${names}`);
    for (const r of REQUIRED) assert.ok(names.includes(r), `an alert ${r}`);
    for (const r of rules) assert.equal(typeof r.alert, 'string', `a rule that is not an alert: ${JSON.stringify(r)}`);
  });

  it('each has a severity, a summary, a description and a runbook section in docs/runbooks.md', () => {
    const doc = fs.readFileSync(RUNBOOKS, 'utf8');
    const anchors = new Set([...doc.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchorOf(m[1])));
    for (const r of rules) {
      assert.ok(['warning', 'critical'].includes(r.labels?.severity ?? ''), `${r.alert}: severity warning or critical`);
      assert.ok(r.annotations?.summary?.trim(), `${r.alert}: a summary`);
      assert.ok(r.annotations?.description?.trim(), `${r.alert}: a description`);
      const m = /^docs\/runbooks\.md#([\w-]+)$/.exec(r.annotations?.runbook_url ?? '');
      assert.ok(m, `${r.alert}: runbook_url docs/runbooks.md#SECTION, found ${r.annotations?.runbook_url}`);
      assert.equal(m[1], anchorOf(r.alert), `${r.alert}: the runbook section is named after the alert`);
      assert.ok(anchors.has(m[1]), `${r.alert}: docs/runbooks.md has no section #${m[1]}`);
    }
    // And no runbook for an alert that does not exist.
    const sections = [...doc.matchAll(/^## (Tally\w+)$/gm)].map((m) => m[1]);
    assert.deepEqual(sections.sort(), rules.map((r) => r.alert).sort(), 'docs/runbooks.md has one ## section per alert');
  });

  it('each is tested firing and not firing by the unit tests', () => {
    const tests = (yaml.load(fs.readFileSync(UNIT_TESTS, 'utf8')) as Obj).tests as Obj[];
    const cases = tests.flatMap((t) => (t.alert_rule_test ?? []) as Obj[]);
    for (const r of rules) {
      const mine = cases.filter((c) => c.alertname === r.alert);
      assert.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${r.alert}: a unit test where it fires`);
      assert.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${r.alert}: a unit test where it does not fire`);
    }
  });

  it('read only metrics docs/metrics.md documents (or Prometheus\'s own)', () => {
    const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'metrics.md'), 'utf8');
    const known = new Set([...[...doc.matchAll(/^\| `([a-zA-Z_:][\w:]*)` \|/gm)].map((m) => m[1])]);
    for (const r of rules) {
      const { names, nameRegexes } = metricNamesIn(r.expr);
      assert.ok(names.length > 0, `${r.alert}: reads no metric? ${r.expr}`);
      assert.deepEqual(nameRegexes, [], `${r.alert}: no __name__ regexes`);
      for (const n of names) assert.ok(PROMETHEUS_OWN.has(n) || familyOf(n, known), `${r.alert}: ${n} is not in docs/metrics.md`);
    }
  });
});
