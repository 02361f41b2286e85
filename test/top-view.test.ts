/**
 * `tally top` without an agent: reading the exposition format, rates between
 * two reads, grouping by label, sorting, the keys, the header line, the
 * table's text, and the flags. Table-driven where the cases are alike.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseExposition, Sample } from '../src/top/exposition-parse';
import { BUILTIN_COLUMNS, parseColumns } from '../src/top/columns';
import { missingLabelNote, NONE_ROW, OVERFLOW_ROW, Reading, rowsBetween, sortRows } from '../src/top/rates';
import { formatRate, renderTable, shorten } from '../src/top/table';
import { healthLine, healthOf } from '../src/top/health-line';
import { keysOf, sortAfterKey } from '../src/top/live-screen';
import { metricsUrl, parseTopFlags } from '../src/top/options';
import { UsageError } from '../src/cli/args';

const SENT = 'tally_tcp_sent_bytes_total';
const EXECS = 'tally_process_execs_total';
const sample = (name: string, labels: Record<string, string>, value: number): Sample => ({ name, labels, value });
const reading = (atMs: number, samples: Sample[]): Reading => ({ atMs, samples });

describe('top: the exposition format', () => {
  it('reads names, labels with escapes, special values and timestamps; skips comments', () => {
    const text = [
      '# HELP tally_tcp_sent_bytes_total Bytes sent.',
      '# TYPE tally_tcp_sent_bytes_total counter',
      'tally_tcp_sent_bytes_total{workload="a",binary="/usr/bin/x"} 1024',
      'tally_tcp_sent_bytes_total{workload="q\\"uote\\\\d\\nl",binary="}{,="} 5 1700000000000',
      'tally_host_cpus 2',
      'x{} +Inf',
      'y -Inf',
      'z{a="1",} NaN',
      '',
    ].join('\n');
    const s = parseExposition(text);
    assert.deepEqual(s.slice(0, 5), [
      sample(SENT, { workload: 'a', binary: '/usr/bin/x' }, 1024),
      sample(SENT, { workload: 'q"uote\\d\nl', binary: '}{,=' }, 5),
      sample('tally_host_cpus', {}, 2),
      sample('x', {}, Infinity),
      sample('y', {}, -Infinity),
    ]);
    assert.ok(Number.isNaN(s[5].value) && s[5].labels.a === '1');
  });

  for (const [line, why] of [
    ['tally_x{a="1"', /unterminated|bad label/],
    ['tally_x{a=1} 2', /bad label/],
    ['tally_x two', /"two" is not a number/],
    ['tally_x', /"" is not a number/],
    ['{a="b"} 1', /no metric name/],
  ] as const) {
    it(`refuses ${JSON.stringify(line)}, naming the line`, () => {
      assert.throws(() => parseExposition(`ok 1\n${line}\n`), (e: Error) => /^line 2 of \/metrics does not parse/.test(e.message) && why.test(e.message));
    });
  }
});

describe('top: rates between two reads', () => {
  const columns = parseColumns('sent,execs');
  const before = reading(10_000, [
    sample(SENT, { workload: 'web', binary: '/a' }, 1000),
    sample(SENT, { workload: 'web', binary: '/b' }, 500),
    sample(SENT, { workload: 'db', binary: '/a' }, 9000),
    sample(SENT, { workload: 'gone', binary: '/a' }, 7),
    sample(EXECS, { workload: 'web', binary: '/a' }, 3),
    sample('tally_unrelated_total', { workload: 'web' }, 1),
  ]);
  const after = reading(12_000, [
    sample(SENT, { binary: '/a', workload: 'web' }, 3000), // labels in another order: the same series
    sample(SENT, { workload: 'web', binary: '/b' }, 500),
    sample(SENT, { workload: 'db', binary: '/a' }, 100), // went down: the agent restarted
    sample(SENT, { workload: 'new', binary: '/a' }, 400), // new: counts from 0
    sample(SENT, { overflow: 'true' }, 64),
    sample(SENT, { binary: '/c' }, 8),
    sample(EXECS, { workload: 'web', binary: '/a' }, 7),
    sample('tally_unrelated_total', { workload: 'other' }, 1e9),
  ]);

  it('sums a row over its series, and divides by the seconds between the reads', () => {
    const rows = rowsBetween(before, after, columns, 'workload');
    const byName = Object.fromEntries(rows.map((r) => [r.name, { inc: r.increases, rate: r.rates }]));
    assert.deepEqual(byName, {
      web: { inc: [2000, 4], rate: [1000, 2] },
      db: { inc: [100, 0], rate: [50, 0] },
      new: { inc: [400, 0], rate: [200, 0] },
      [OVERFLOW_ROW]: { inc: [64, 0], rate: [32, 0] },
      [NONE_ROW]: { inc: [8, 0], rate: [4, 0] },
    });
  });

  it('groups by another label', () => {
    const rows = rowsBetween(before, after, columns, 'binary');
    assert.deepEqual(Object.fromEntries(rows.map((r) => [r.name, r.increases])), { '/a': [2500, 4], '/b': [0, 0], '/c': [8, 0], [OVERFLOW_ROW]: [64, 0] });
  });

  it('notes a --by label no series carries, and only then', () => {
    const only = (names: string[]) => names.map((name) => ({ name, rates: [0], increases: [0] }));
    assert.equal(missingLabelNote(only([NONE_ROW]), 'pod'), "note: no series has a pod label: the agent's --metrics-label-filter leaves it out or it has no Kubernetes to learn it from");
    assert.equal(missingLabelNote(only([NONE_ROW, OVERFLOW_ROW]), 'binary'), "note: no series has a binary label: the agent's --metrics-label-filter leaves it out");
    assert.equal(missingLabelNote(only([NONE_ROW, 'web']), 'workload'), undefined);
    assert.equal(missingLabelNote([], 'workload'), undefined);
  });

  it('refuses reads out of order', () => {
    assert.throws(() => rowsBetween(after, before, columns, 'workload'), /must come after/);
  });

  const rows = rowsBetween(before, after, columns, 'workload');
  for (const [order, names] of [
    [{ column: 0, descending: true }, ['web', 'new', 'db', OVERFLOW_ROW, NONE_ROW]],
    [{ column: 0, descending: false }, [NONE_ROW, OVERFLOW_ROW, 'db', 'new', 'web']],
    // Ties (all 0 but web) keep name order, whichever the direction of the column.
    [{ column: 1, descending: true }, ['web', NONE_ROW, OVERFLOW_ROW, 'db', 'new']],
    [{ column: -1, descending: false }, [NONE_ROW, OVERFLOW_ROW, 'db', 'new', 'web']],
    [{ column: -1, descending: true }, ['web', 'new', 'db', OVERFLOW_ROW, NONE_ROW]],
  ] as const) {
    it(`sorts by column ${order.column}, ${order.descending ? 'descending' : 'ascending'}`, () => {
      assert.deepEqual(sortRows(rows, order).map((r) => r.name), names);
    });
  }
});

describe('top: keys', () => {
  const at = (column: number, descending = column >= 0) => ({ column, descending });
  for (const [key, from, to] of [
    ['>', at(0), at(1)],
    ['.', at(0), at(1)],
    ['>', at(4), at(4)], // the last column stays the last
    ['<', at(1), at(0)],
    ['<', at(0), at(-1)], // the name column, A to Z
    ['<', at(-1), at(-1)],
    ['r', at(2), at(2, false)],
    ['r', at(-1), at(-1, true)],
    ['3', at(0), at(2)],
    ['0', at(3), at(-1)],
    ['6', at(0), undefined], // 5 columns: no sixth
    ['x', at(0), undefined],
  ] as const) {
    it(`${key} from column ${from.column} ${from.descending ? 'desc' : 'asc'}`, () => {
      assert.deepEqual(sortAfterKey(key, from, 5), to);
    });
  }
});

describe('top: what the terminal sends', () => {
  for (const [sent, keys] of [
    ['q', ['q']],
    ['>>r', ['>', '>', 'r']],
    ['\x1b[D\x1b[C', ['<', '>']], // arrows, normal cursor mode
    ['\x1bOD\x1bOC', ['<', '>']], // arrows, application cursor mode
    ['\x03', ['\x03']],
  ] as const) {
    it(`${JSON.stringify(sent)} is ${JSON.stringify(keys)}`, () => assert.deepEqual(keysOf(sent), keys));
  }
});

describe('top: text', () => {
  for (const [value, unit, text] of [
    [0, 'bytes', '0'],
    [512, 'bytes', '512 B'],
    [1536, 'bytes', '1.5 KiB'],
    [3 * 1024 * 1024, 'bytes', '3.0 MiB'],
    [5 * 1024 ** 4 * 2000, 'bytes', '10000.0 TiB'],
    [0.5, 'count', '0.50'],
    [12.34, 'count', '12.3'],
    [1234, 'count', '1.2k'],
    [2_500_000, 'count', '2.5M'],
  ] as const) {
    it(`formats ${value} ${unit} as "${text}"`, () => assert.equal(formatRate(value, unit), text));
  }

  it('shortens long names keeping both ends', () => {
    assert.equal(shorten('/usr/lib/jvm/java-17/bin/java', 15), '/usr/l...n/java');
    assert.equal(shorten('short', 15), 'short');
  });

  const view = {
    by: 'workload',
    columns: parseColumns('sent,execs'),
    rows: [
      { name: 'web', rates: [1536, 0.5], increases: [3072, 1] },
      { name: 'a-very-long-workload-name-indeed', rates: [0, 0], increases: [0, 0] },
    ],
    order: { column: 0, descending: true },
  };

  it('renders the heading with the sort column marked, and one line per row', () => {
    assert.deepEqual(renderTable(view), [
      'WORKLOAD                          *TCP SENT/s    EXECS/s',
      'web                                   1.5 KiB       0.50',
      'a-very-long-workload-name-indeed            0          0',
    ]);
  });

  it('fits a width by cutting names, and keeps to maxRows', () => {
    const lines = renderTable(view, 40, 1);
    // Only the rows shown decide the name column's width.
    assert.deepEqual(lines, ['WORKLOAD  *TCP SENT/s    EXECS/s', 'web           1.5 KiB       0.50']);
    const cut = renderTable({ ...view, rows: [view.rows[1]] }, 40);
    assert.equal(cut[1], 'a-very-...indeed            0          0');
    assert.ok(cut.every((l) => l.length <= 40));
  });

  it('writes the header from the health metrics, the fullest map first', () => {
    const h = healthOf([
      sample('tally_metric_series', { metric: SENT }, 800),
      sample('tally_metric_series', { metric: EXECS }, 12),
      sample('tally_metric_overflowed_label_sets', { metric: SENT }, 3),
      sample('tally_bpf_map_entries', { map: 'tally_counters' }, 1024),
      sample('tally_bpf_map_capacity', { map: 'tally_counters' }, 16384),
      sample('tally_bpf_map_entries', { map: 'tally_cgroup_label_sets' }, 900),
      sample('tally_bpf_map_capacity', { map: 'tally_cgroup_label_sets' }, 1000),
      sample('tally_bpf_map_entries', { map: 'no_capacity_known' }, 5),
      sample('tally_bpf_map_overflow_updates_total', { map: 'tally_counters' }, 1500),
      sample('tally_bpf_map_lost_updates_total', { map: 'tally_counters' }, 0),
      sample('tally_build_info', { version: '0.1.0' }, 1),
    ]);
    assert.deepEqual(h.maps.map((m) => m.map), ['tally_cgroup_label_sets', 'tally_counters']);
    assert.equal(h.version, '0.1.0');
    assert.equal(healthLine(h), 'series 812 (3 label sets over the limit) | map tally_cgroup_label_sets 900/1,000 (90.0%) | map overflow 1,500 updates, 0 lost');
    assert.equal(healthLine(healthOf([])), 'series 0 | map overflow 0 updates, 0 lost');
  });
});

describe('top: flags', () => {
  it('defaults: 127.0.0.1:2112, by workload, the five built-in columns, sorted by the first, every 2s', () => {
    const o = parseTopFlags([], {});
    assert.equal(o.target.url.href, 'http://127.0.0.1:2112/metrics');
    assert.equal(o.by, 'workload');
    assert.deepEqual(o.columns, BUILTIN_COLUMNS);
    assert.deepEqual(o.order, { column: 0, descending: true });
    assert.equal(o.intervalMs, 2000);
    assert.equal(o.target.user, undefined);
    assert.equal(o.target.password, undefined, 'no password is sent without --user');
  });

  for (const [text, url] of [
    [':2112', 'http://127.0.0.1:2112/metrics'],
    ['node-1:9000', 'http://node-1:9000/metrics'],
    ['[::1]:2112', 'http://[::1]:2112/metrics'],
    ['https://node-1:2112', 'https://node-1:2112/metrics'],
    ['http://proxy/tally/metrics', 'http://proxy/tally/metrics'],
  ] as const) {
    it(`--server ${text}`, () => assert.equal(metricsUrl(text).href, url));
  }

  it('--sort, --metric with a user counter, --json, --user with $TALLY_PASSWORD', () => {
    const o = parseTopFlags(['--metric', 'execs,myapp_calls_total', '--sort', 'myapp_calls_total', '--by', 'binary', '--json', '--user', 'u'], { TALLY_PASSWORD: 'pw' });
    assert.deepEqual(o.columns.map((c) => [c.key, c.title, c.unit]), [['execs', 'EXECS/s', 'count'], ['myapp_calls_total', 'MYAPP_CALLS/s', 'count']]);
    assert.deepEqual(o.order, { column: 1, descending: true });
    assert.equal(o.json, true);
    assert.equal(o.target.password, 'pw');
    assert.deepEqual(parseTopFlags(['--sort', 'pod', '--by', 'pod'], {}).order, { column: -1, descending: false });
  });

  for (const [argv, message] of [
    [['--by', 'node'], '--by "node" is not one of namespace, workload, pod, container, binary'],
    [['--metric', 'sent,bogus'], '--metric: "bogus" is neither one of sent, received, retransmits, file, execs nor a counter\'s name ending in _total'],
    [['--metric', 'sent,tally_tcp_sent_bytes_total'], '--metric: "tally_tcp_sent_bytes_total" is given twice'],
    [['--metric', ''], '--metric is empty; give some of sent, received, retransmits, file, execs, or a counter\'s name ending in _total'],
    [['--sort', 'execs', '--metric', 'sent'], '--sort "execs" is not a shown column; give workload or one of sent'],
    [['--interval', '10ms'], '--interval "10ms" is too short; give 100ms or more'],
    [['--interval', 'soon'], '--interval "soon" is not a duration; write it like 30s, 1m or 1m30s (units: ms, s, m, h)'],
    [['--server', 'nope'], '--server "nope" is not HOST:PORT or a URL; examples: 127.0.0.1:2112, :2112, https://node-1:2112'],
    [['--cert-file', '/x'], '--cert-file and --key-file go together; give both or neither'],
    [['--password-file', '/x'], '--password-file needs --user'],
    [['--ca-file', '/nonexistent/ca.pem'], '--ca-file /nonexistent/ca.pem: no such file'],
    [['--frobnicate'], /^top: Unknown option '--frobnicate'; usage: tally top /],
  ] as const) {
    it(`refuses ${argv.join(' ')} in one line`, () => {
      assert.throws(
        () => parseTopFlags([...argv], {}),
        (e: Error) => e instanceof UsageError && !e.message.includes('\n') && (typeof message === 'string' ? e.message === message : message.test(e.message)),
      );
    });
  }
});
