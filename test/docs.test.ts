/** docs/metrics.md is generated from the code and must match it. */
import { describe, it, after, before } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { builtinPolicyMetrics, renderMetricsDoc } from '../src/tools/metrics-doc';
import { CATALOG } from '../src/metrics/catalog';
import { PROJECT_ROOT } from '../src/util/paths';
import { AgentProcess } from './helpers/agent-process';
import { spawnSync } from 'node:child_process';
import { parsePromText, select } from './helpers/prom-text';
import { LABEL_MEMO_CAPACITY, REMOVED_CGROUP_CAPACITY } from '../src/cardinality/key-labels';
import { BUILTIN_POLICIES } from '../src/cli/args';

describe('docs/metrics.md', () => {
  it('is current (regenerate with npm run docs)', async () => {
    const onDisk = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'metrics.md'), 'utf8');
    assert.equal(onDisk, await renderMetricsDoc(), 'docs/metrics.md is stale: run `npm run docs`');
  });
});

describe('the live agent', () => {
  let agent: AgentProcess;
  // Every built-in, those off by default (tcp-peers) included: each one's metrics are checked against the docs.
  before(async () => (agent = await AgentProcess.start(['--builtin-policies', BUILTIN_POLICIES.join(',')])));
  after(async () => agent?.stop());

  it('exposes exactly the catalogued tally_* metrics and the built-in policies\' metrics, with their help and type', async () => {
    const text = await agent.metricsText();
    const families = new Map<string, { help?: string; type?: string }>();
    for (const m of text.matchAll(/^# (HELP|TYPE) (tally_\w+) (.*)$/gm)) {
      const f = families.get(m[2]) ?? {};
      if (m[1] === 'HELP') f.help = m[3];
      else f.type = m[3];
      families.set(m[2], f);
    }
    // Outside Kubernetes, everything but the Kubernetes watcher's metrics.
    const expected = [...CATALOG.filter((c) => !c.onlyWith), ...(await builtinPolicyMetrics())];
    assert.deepEqual([...families.keys()].sort(), expected.map((c) => c.name).sort());
    for (const c of expected) assert.deepEqual(families.get(c.name), { help: c.help, type: c.type }, c.name);
  });

  it('reports every bounded user-space cache with its capacity', async () => {
    const series = parsePromText(await agent.metricsText());
    const capacity = Object.fromEntries(select(series, 'tally_cache_capacity').map((s) => [s.labels.cache, s.value]));
    assert.deepEqual(capacity, {
      cgroup_path: 131072,
      binary_path: capacity.binary_path, // a flag
      cgroup_labels: LABEL_MEMO_CAPACITY,
      removed_cgroup_labels: REMOVED_CGROUP_CAPACITY,
      series_labels_binary: LABEL_MEMO_CAPACITY,
      series_labels_extra: LABEL_MEMO_CAPACITY,
    });
    for (const name of ['tally_cache_entries', 'tally_cache_hits_total', 'tally_cache_misses_total', 'tally_cache_evictions_total']) {
      assert.equal(select(series, name).length, Object.keys(capacity).length, name);
    }
  });

  it('passes promtool check metrics', () => {
    return agent.metricsText().then((text) => {
      const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      assert.equal(r.status, 0, `promtool check metrics:\n${r.stdout}${r.stderr}`);
      assert.equal((r.stdout + r.stderr).trim(), '');
    });
  });
});
