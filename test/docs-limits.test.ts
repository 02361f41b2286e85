/**
 * docs/limits.md names every limit the code has: each policy limit of
 * src/policy/limits.ts (here or in the policies page it links), the flags
 * that set a limit, with their defaults, and only metrics that exist.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../src/util/paths';
import { LIMITS } from '../src/policy';
import { CATALOG } from '../src/metrics/catalog';
import { DEFAULT_HTTP_LIMITS, MIN_FD_RESERVE } from '../src/exporters/connection-limits';
import { HEAP_LIMIT_MB, MEMORY_FLAGS } from '../src/cli/heap';

const NODE_FLAGS = new Set(MEMORY_FLAGS.map((f) => f.split('=')[0]));
import { MAX_EVENT_BYTES, MAX_LIST_BYTES } from '../src/labels/kube/http';
import { HELP } from '../src/cli/args';
import { PROCESS_METRIC_NAMES } from '../src/metrics/reserved-names';

const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'limits.md'), 'utf8');
const policies = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'policies.md'), 'utf8');
const readme = fs.readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');

describe('docs/limits.md', () => {
  it('is linked from the README', () => {
    assert.match(readme, /\]\(docs\/limits\.md(#[\w-]+)?\)/);
  });

  it('names the policy limits with their values', () => {
    for (const key of ['fileBytes', 'policiesPerFile', 'hooksPerAgent'] as const) {
      assert.ok(doc.includes(`(\`${key}\`)`) || doc.includes(`${LIMITS[key]} (\`${key}\`)`), key);
    }
    assert.match(doc, new RegExp(`\\| ${LIMITS.policiesPerFile} \\(\`policiesPerFile\`\\)`));
    assert.match(doc, new RegExp(`\\| ${LIMITS.hooksPerAgent} \\(\`hooksPerAgent\`\\)`));
    assert.match(doc, /\[policies\.md, Limits\]\(policies\.md#limits\)/);
    for (const key of Object.keys(LIMITS)) assert.ok(policies.includes(`| \`${key}\` |`), `docs/policies.md lists ${key}`);
  });

  it('gives the defaults the code has', () => {
    assert.match(doc, new RegExp(`\`--web.max-connections\`, ${DEFAULT_HTTP_LIMITS.maxConnections}`));
    assert.match(doc, new RegExp(`\`--web.read-header-timeout\`, ${DEFAULT_HTTP_LIMITS.headerTimeoutMs / 1000}s`));
    assert.match(doc, new RegExp(`\`--web.idle-timeout\`, ${DEFAULT_HTTP_LIMITS.idleTimeoutMs / 1000}s`));
    assert.match(doc, new RegExp(`at least ${MIN_FD_RESERVE} \\|`));
    assert.match(doc, new RegExp(`\\| ${HEAP_LIMIT_MB} MiB`));
    assert.match(doc, new RegExp(`\\| ${MAX_LIST_BYTES / 2 ** 20} MiB \\|`));
    assert.match(doc, new RegExp(`\\| ${MAX_EVENT_BYTES / 2 ** 20} MiB `));
  });

  it('names every flag that sets a limit, and each is a real flag', () => {
    const flags = new Set([...HELP.matchAll(/^ {2}(--[a-z][a-z.-]*)/gm)].map((m) => m[1]));
    const named = [...doc.matchAll(/`(--[a-z][a-z.-]*)`/g)].map((m) => m[1]);
    // node's own flags, which tally sets (src/cli/heap.ts), are not tally's.
    for (const f of named) assert.ok(flags.has(f) || NODE_FLAGS.has(f), `${f} is a flag`);
    for (const f of ['--bpf-map-capacity', '--metrics-series-limit', '--metrics-series-ttl', '--binary-cache-capacity', '--web.max-connections', '--web.read-header-timeout', '--web.idle-timeout', '--otlp-interval']) {
      assert.ok(named.includes(f), `${f} is on the page`);
    }
  });

  it('shows only metrics that exist', () => {
    // tally's metrics, node's process metrics, and the BPF maps the page names by name.
    const bpfSources = fs.readdirSync(path.join(PROJECT_ROOT, 'bpf')).filter((f) => /\.(c|h)$/.test(f)).map((f) => fs.readFileSync(path.join(PROJECT_ROOT, 'bpf', f), 'utf8')).join('\n');
    const maps = [...bpfSources.matchAll(/^\} (tally_\w+) SEC\("\.maps"\)/gm)].map((m) => m[1]);
    const known = new Set([...CATALOG.map((c) => c.name), ...PROCESS_METRIC_NAMES, ...maps]);
    const named = new Set([...doc.matchAll(/`((?:tally|process|nodejs)_[a-z_]+)(?:\{[^`]*\})?`/g)].map((m) => m[1]));
    assert.ok(named.size >= 25, `${named.size} metrics`);
    for (const m of named) assert.ok(known.has(m), m);
  });
});
