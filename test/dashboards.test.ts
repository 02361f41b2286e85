/**
 * The Grafana dashboards in dashboards/, read without Grafana: their
 * structure (schema version, variables, panel ids, data sources, targets),
 * that every query filters by the dashboard's variables and reads only
 * documented metrics, that the Helm chart ships byte-identical copies, and
 * that docs/dashboards.md describes every panel and its query.
 * test/dashboard-queries.test.ts runs every query in a real Prometheus.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../src/util/paths';
import {
  DASHBOARD_DIR,
  Json,
  PROMETHEUS_OWN,
  familyOf,
  interpolate,
  labelValuesQuery,
  loadDashboards,
  metricNamesIn,
  panelsOf,
  queriesOf,
  selectorsIn,
  variablesOf,
} from './helpers/dashboards';

const CHART_DASHBOARDS = path.join(PROJECT_ROOT, 'helm', 'tally', 'files', 'dashboards');
const DS = { type: 'prometheus', uid: '${datasource}' };
const dashboards = loadDashboards();

/** The variables each dashboard filters by, beside the data source: every selector of every query must use them. */
const FILTERS: Record<string, string[]> = {
  'tally-network.json': ['namespace', 'workload'],
  'tally-files-processes.json': ['namespace', 'workload'],
  'tally-agent-health.json': ['job', 'instance'],
};

/** Metric names docs/metrics.md documents (the first column of its tables). */
function documentedMetrics(): Set<string> {
  const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'metrics.md'), 'utf8');
  return new Set([...doc.matchAll(/^\| `([a-zA-Z_:][\w:]*)` \|/gm)].map((m) => m[1]));
}

describe('dashboards/', () => {
  it('holds the three dashboards, with unique uids and titles', () => {
    assert.deepEqual(dashboards.map((d) => d.file), Object.keys(FILTERS).sort());
    const uids = dashboards.map((d) => d.json.uid);
    assert.equal(new Set(uids).size, uids.length, `uids are unique: ${uids}`);
    const titles = dashboards.map((d) => d.json.title);
    assert.equal(new Set(titles).size, titles.length, `titles are unique: ${titles}`);
    for (const d of dashboards) {
      assert.equal(d.json.uid, d.file.replace(/\.json$/, ''), `${d.file}: the uid is the file name`);
      assert.ok(d.json.tags.includes('tally'), `${d.file}: tagged tally (the dashboards link to each other by tag)`);
    }
  });

  it('the Helm chart ships byte-identical copies (sync with npm run dashboards:sync)', () => {
    const chart = fs.readdirSync(CHART_DASHBOARDS).filter((f) => f.endsWith('.json')).sort();
    assert.deepEqual(chart, dashboards.map((d) => d.file), 'helm/tally/files/dashboards/*.json and dashboards/*.json differ in files: run npm run dashboards:sync');
    for (const f of chart) {
      const a = fs.readFileSync(path.join(DASHBOARD_DIR, f));
      const b = fs.readFileSync(path.join(CHART_DASHBOARDS, f));
      assert.ok(a.equals(b), `helm/tally/files/dashboards/${f} differs from dashboards/${f}: run npm run dashboards:sync`);
    }
  });
});

for (const d of dashboards) {
  describe(`dashboard ${d.file}`, () => {
    const vars = variablesOf(d);
    const filters = FILTERS[d.file] ?? [];

    it('has a current schema version and a prometheus datasource variable', () => {
      assert.equal(typeof d.json.schemaVersion, 'number');
      assert.ok(d.json.schemaVersion >= 39, `${d.file}: schemaVersion ${d.json.schemaVersion} is older than 39 (Grafana 10.4)`);
      const ds = vars.find((v) => v.name === 'datasource');
      assert.ok(ds, `${d.file}: a variable named datasource`);
      assert.equal(ds.type, 'datasource');
      assert.equal(ds.query, 'prometheus');
    });

    it(`has ${filters.join(' and ')} variables from label_values, multi-valued, All = .*`, () => {
      assert.deepEqual(vars.map((v) => v.name), ['datasource', ...filters], `${d.file}: variables in order`);
      for (const name of filters) {
        const v = vars.find((x) => x.name === name)!;
        const where = `${d.file} variable ${name}`;
        assert.equal(v.type, 'query', where);
        assert.deepEqual(v.datasource, DS, `${where}: datasource`);
        const { selector, label } = labelValuesQuery(v);
        assert.equal(label, name, `${where}: label_values(…, ${name})`);
        assert.equal(v.definition, v.query.query, `${where}: definition is the query`);
        // Absent labels (no namespace outside Kubernetes) match only a regex that matches "".
        assert.equal(v.includeAll, true, `${where}: includeAll`);
        assert.equal(v.allValue, '.*', `${where}: allValue`);
        assert.equal(v.multi, true, `${where}: multi`);
        assert.equal(v.refresh, 2, `${where}: refreshed on time range change`);
        // Each variable narrows by the ones before it.
        for (const before of filters.slice(0, filters.indexOf(name))) {
          assert.ok(selectorsIn(selector).every((s) => s.includes(`${before}=~"$${before}"`)), `${where}: ${selector} filters by $${before}`);
        }
      }
    });

    it('gives every panel a unique id, a place on the grid, the ${datasource} and queries', () => {
      const panels = panelsOf(d);
      const ids = panels.map((p) => p.json.id);
      assert.ok(ids.every((id) => Number.isInteger(id)), `${d.file}: integer panel ids`);
      assert.equal(new Set(ids).size, ids.length, `${d.file}: panel ids are unique: ${ids}`);
      const titles = panels.map((p) => p.json.title);
      assert.equal(new Set(titles).size, titles.length, `${d.file}: panel titles are unique`);
      for (const p of panels) {
        const where = `${d.file} panel "${p.json.title}"`;
        const g = p.json.gridPos;
        assert.ok(g && g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0 && g.y >= 0, `${where}: gridPos within 24 columns: ${JSON.stringify(g)}`);
        if (p.json.type === 'row') {
          assert.equal(p.json.targets, undefined, `${where}: a row has no queries`);
          continue;
        }
        assert.ok(typeof p.json.description === 'string' && p.json.description.length > 0, `${where}: a description`);
        assert.deepEqual(p.json.datasource, DS, `${where}: datasource`);
        assert.ok(Array.isArray(p.json.targets) && p.json.targets.length > 0, `${where}: at least one target`);
        const refIds = p.json.targets.map((t: Json) => t.refId);
        assert.equal(new Set(refIds).size, refIds.length, `${where}: unique refIds`);
        for (const t of p.json.targets) {
          assert.deepEqual(t.datasource, DS, `${where} target ${t.refId}: datasource`);
          assert.ok(typeof t.expr === 'string' && t.expr.trim() !== '', `${where} target ${t.refId}: an expr`);
          if (p.json.type === 'heatmap') assert.equal(t.format, 'heatmap', `${where}: a heatmap's query has format heatmap`);
          if (p.json.type === 'table') assert.ok(t.instant === true && t.format === 'table', `${where}: a table's query is instant, format table`);
        }
      }
      // Nothing but the data source variable names a data source.
      const uids = [...JSON.stringify(d.json).matchAll(/"uid":\s*"([^"]*)"/g)].map((m) => m[1]).filter((u) => u !== d.json.uid);
      assert.deepEqual([...new Set(uids)], ['${datasource}'], `${d.file}: no hard-coded data source uid`);
    });

    it(`filters every selector of every query by ${filters.map((f) => `$${f}`).join(' and ')}`, () => {
      for (const q of queriesOf(d)) {
        const where = `${d.file} panel "${q.panel}" query ${q.refId}: ${q.expr}`;
        const { names } = metricNamesIn(q.expr);
        for (const n of names) {
          // A bare metric name would not be filtered: each must come with its matchers.
          const uses = [...q.expr.matchAll(new RegExp(`(?<![\\w:])${n}(?![\\w:])`, 'g'))];
          assert.ok(uses.every((u) => q.expr[u.index! + n.length] === '{'), `${where}: ${n} without a selector`);
        }
        const selectors = selectorsIn(q.expr);
        assert.ok(selectors.length > 0, `${where}: no selector`);
        for (const s of selectors) {
          for (const f of filters) assert.ok(s.includes(`${f}=~"$${f}"`), `${where}: selector {${s}} lacks ${f}=~"$${f}"`);
        }
      }
    });

    it('substitutes every variable of every query, for All and for picked values', () => {
      const builtins = { intervalS: 15, scrapeIntervalS: 15, rangeS: 3600 };
      for (const q of queriesOf(d)) {
        const all = interpolate(q.expr, vars, Object.fromEntries(filters.map((f) => [f, 'All'])), builtins);
        for (const f of filters) assert.ok(all.includes(`${f}=~".*"`), `${d.file} panel "${q.panel}": ${all}`);
        assert.ok(!all.includes('$'), all);
        const picked = interpolate(q.expr, vars, Object.fromEntries(filters.map((f) => [f, ['a.b', 'c']])), builtins);
        for (const f of filters) assert.ok(picked.includes(`${f}=~"(a\\\\.b|c)"`), `${d.file} panel "${q.panel}": ${picked}`);
      }
    });

    it('reads only metrics docs/metrics.md documents (or Prometheus\'s own)', () => {
      const documented = documentedMetrics();
      const known = new Set(documented);
      for (const q of [...queriesOf(d), ...vars.filter((v) => v.type === 'query').map((v) => ({ panel: `variable ${v.name}`, refId: '', expr: labelValuesQuery(v).selector }))]) {
        const { names, nameRegexes } = metricNamesIn(q.expr);
        for (const n of names) {
          assert.ok(PROMETHEUS_OWN.has(n) || familyOf(n, known), `${d.file} ${q.panel}: ${n} is not in docs/metrics.md`);
        }
        for (const re of nameRegexes) {
          const matching = [...known].filter((n) => new RegExp(`^(?:${re})$`).test(n));
          assert.ok(matching.length > 0, `${d.file} ${q.panel}: __name__=~"${re}" matches no documented metric`);
        }
      }
    });
  });
}

describe('docs/dashboards.md', () => {
  const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'dashboards.md'), 'utf8');

  it('describes every dashboard, every panel and its queries', () => {
    for (const d of dashboards) {
      assert.ok(doc.includes(d.json.title), `docs/dashboards.md names the dashboard "${d.json.title}"`);
      for (const p of panelsOf(d).filter((x) => x.json.type !== 'row')) {
        assert.match(doc, new RegExp(`^#+ ${p.json.title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), `docs/dashboards.md has a heading for panel "${p.json.title}" of ${d.file}`);
      }
      for (const q of queriesOf(d)) {
        assert.ok(doc.includes(q.expr), `docs/dashboards.md shows the query of ${d.file} panel "${q.panel}" (${q.refId}) as it is:\n${q.expr}`);
      }
    }
  });

  it('is linked from README.md', () => {
    assert.match(fs.readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8'), /\]\(docs\/dashboards\.md\)/);
  });
});
