/**
 * The README's flag table states where each OTLP setting comes from when its
 * flag is absent: the environment variables config.ts reads, in its order.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../src/util/paths';
import { resolveOtlpConfig } from '../src/exporters/otlp/config';
import { TOP_HELP } from '../src/top/options';

const README = fs.readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
const CONFIG_TS = fs.readFileSync(path.join(PROJECT_ROOT, 'src', 'exporters', 'otlp', 'config.ts'), 'utf8');

/** The variables config.ts consults for a flag, in order: first(['--flag', flag], ['VAR', env.VAR], …). */
function variablesOf(flag: string): string[] {
  const call = new RegExp(`first\\(\\['${flag}', flag\\]((?:, \\['\\w+', env\\.\\w+\\])+)\\)`).exec(CONFIG_TS);
  assert.ok(call, `config.ts reads ${flag} through first(...)`);
  return [...call[1].matchAll(/\['(\w+)'/g)].map((m) => m[1]);
}

/** The default cell of a flag's row in the README's table. */
function readmeDefault(flag: string): string {
  const row = README.split('\n').find((l) => l.startsWith(`| \`${flag} `));
  assert.ok(row, `the README's table has a row for ${flag}`);
  return row.split(' | ')[1];
}

describe('README flag table', () => {
  for (const flag of ['--otlp-endpoint', '--otlp-protocol']) {
    it(`${flag}'s default names every variable that sets it, in the order they win`, () => {
      const vars = variablesOf(flag);
      assert.ok(vars.length >= 2, `${flag} reads ${vars}`);
      const named = [...readmeDefault(flag).matchAll(/`\$(\w+)`/g)].map((m) => m[1]);
      assert.deepEqual(named, vars);
    });
  }

  it('the metrics-specific protocol variable does set the protocol (what the README says)', () => {
    const cfg = resolveOtlpConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'grpc' });
    assert.equal(cfg?.protocol, 'grpc');
  });
});

describe("README's tally top table", () => {
  it('has a row for each flag tally top --help lists, and no other', () => {
    const helpFlags = [...TOP_HELP.matchAll(/^ {2}(--[a-z-]+)/gm)].map((m) => m[1]);
    const section = README.split('## Watching it live: `tally top`')[1]?.split('\n## ')[0];
    assert.ok(section, 'the README has a tally top section');
    const readmeFlags = [...section.matchAll(/^\| `(--[a-z-]+)/gm)].map((m) => m[1]);
    assert.ok(helpFlags.length >= 10, helpFlags.join(' '));
    assert.deepEqual(readmeFlags, helpFlags);
  });
});
