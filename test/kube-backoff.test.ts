/**
 * The pure parts of being gentle on the API server: full-jitter backoff,
 * jittered periods, the once-per-outage log, and naming the resource of a
 * request for tally_kube_requests_total.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { Backoff, jittered } from '../src/labels/kube/backoff';
import { OutageLog } from '../src/labels/kube/outage-log';
import { KubeRequestCounts, resourceOf } from '../src/labels/kube/request-counts';
import { busiestWindow, modelReconnects, quantile } from '../bench/kube-load/stats';
import { Logger } from '../src/util/log';

/** A random source that returns these values in turn. */
const draws = (...xs: number[]) => {
  let i = 0;
  return () => xs[i++ % xs.length];
};

describe('Backoff (full jitter, client-go wait.Backoff steps)', () => {
  const table: Array<[string, { initialMs: number; capMs: number; factor?: number }, number[], number[]]> = [
    // Ceilings 500, 1000, 2000, ... 30000: the largest draw just under each.
    ['the ceiling doubles up to the cap', { initialMs: 500, capMs: 30_000 }, [0.999999], [499, 999, 1999, 3999, 7999, 15999, 29999, 29999, 29999]],
    ['a draw of 0 retries at once', { initialMs: 500, capMs: 30_000 }, [0], [0, 0, 0]],
    ['each wait is its draw times its ceiling', { initialMs: 500, capMs: 30_000 }, [0.5, 0.25, 0.1, 0.75], [250, 250, 200, 3000, 4000]],
    ['factor 3', { initialMs: 100, capMs: 1000, factor: 3 }, [0.5], [50, 150, 450, 500, 500]],
    ['a cap equal to the first step', { initialMs: 200, capMs: 200 }, [0.5], [100, 100, 100]],
  ];
  for (const [what, opts, random, waits] of table) {
    it(what, () => {
      const b = new Backoff({ ...opts, random: draws(...random) });
      assert.deepEqual(waits.map(() => b.next()), waits);
    });
  }

  it('reset starts again from the first step', () => {
    const b = new Backoff({ initialMs: 500, capMs: 30_000, random: () => 0.5 });
    assert.deepEqual([b.next(), b.next(), b.next()], [250, 500, 1000]);
    assert.equal(b.failures, 3);
    b.reset();
    assert.equal(b.failures, 0);
    assert.equal(b.next(), 250);
  });

  it('a thousand failures in a row stay at the cap (no overflow)', () => {
    const b = new Backoff({ initialMs: 500, capMs: 30_000, random: () => 0.999 });
    for (let i = 0; i < 1000; i++) b.next();
    assert.equal(b.ceilingMs, 30_000);
    assert.equal(b.next(), 29970);
  });

  it('refuses settings that make no sense, in one line', () => {
    assert.throws(() => new Backoff({ initialMs: 0, capMs: 10 }), /^Error: backoff: need 0 < initialMs <= capMs, got initialMs=0 capMs=10$/);
    assert.throws(() => new Backoff({ initialMs: 10, capMs: 5 }), /need 0 < initialMs <= capMs/);
    assert.throws(() => new Backoff({ initialMs: 10, capMs: 50, factor: 0.5 }), /^Error: backoff: factor must be at least 1, got 0.5$/);
  });
});

describe('jittered periods', () => {
  const table: Array<[number, number, number, number]> = [
    [300, 1, 0, 300],
    [300, 1, 0.5, 450],
    [300, 1, 0.999, 599],
    [60_000, 0.5, 0.5, 75_000],
  ];
  for (const [base, spread, r, want] of table) {
    it(`${base} with spread ${spread} and draw ${r} is ${want}`, () => assert.equal(jittered(base, spread, () => r), want));
  }
});

describe('OutageLog', () => {
  it('warns once when an outage starts, and once when it ends, with the count and the duration', () => {
    const lines: string[] = [];
    let now = 1_000;
    const o = new OutageLog(new Logger('info', (l) => lines.push(l)), 'kubernetes pod watch', { server: 'https://10.0.0.1' }, () => now);
    o.answered(); // no outage: nothing to say
    for (let i = 0; i < 7; i++) {
      o.failed('connection', 'connect ECONNREFUSED 10.0.0.1:443');
      now += 2_000;
    }
    assert.equal(lines.length, 1);
    assert.match(lines[0], /level=warn msg="kubernetes pod watch: the API server request failed; retrying with backoff \(logged again once it answers\)" reason=connection error="connect ECONNREFUSED 10.0.0.1:443" server=https:\/\/10.0.0.1$/);
    assert.equal(o.open, true);
    o.answered();
    o.answered();
    assert.equal(lines.length, 2);
    assert.match(lines[1], /level=info msg="kubernetes pod watch: the API server answers again" failed_attempts=7 outage_seconds=14 server=https:\/\/10.0.0.1$/);
    assert.equal(o.open, false);
    o.failed('http_status', 'HTTP 503');
    assert.equal(lines.length, 3, 'a new outage is logged again');
  });
});

describe('tally_kube_requests_total labels', () => {
  const table: Array<[string, string]> = [
    ['/api/v1/pods', 'pods'],
    ['/api/v1/namespaces/shop/pods/web-0', 'pods'],
    ['/apis/apps/v1/namespaces/shop/replicasets/web-7d4b9c8f6', 'replicasets'],
    ['/apis/batch/v1/namespaces/shop/jobs/report-28123456', 'jobs'],
    ['/healthz', 'unknown'],
  ];
  for (const [path, resource] of table) it(`${path} is ${resource}`, () => assert.equal(resourceOf(path), resource));

  it('counts by verb, resource and code', () => {
    const c = new KubeRequestCounts();
    c.count('list', 'pods', 200);
    c.count('watch', 'pods', 200);
    c.count('watch', 'pods', 200);
    c.count('watch', 'pods', 'error');
    c.count('get', 'replicasets', 404);
    assert.deepEqual(c.samples(), [
      { labels: { verb: 'list', resource: 'pods', code: '200' }, value: 1 },
      { labels: { verb: 'watch', resource: 'pods', code: '200' }, value: 2 },
      { labels: { verb: 'watch', resource: 'pods', code: 'error' }, value: 1 },
      { labels: { verb: 'get', resource: 'replicasets', code: '404' }, value: 1 },
    ]);
    assert.equal(c.total, 5);
  });
});

describe('bench:kube arithmetic', () => {
  it('quantiles by nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 1..100, unsorted
    assert.deepEqual([0.05, 0.5, 0.95, 1].map((q) => quantile(xs, q)), [5, 50, 95, 100]);
    assert.deepEqual([quantile([7], 0.05), quantile([7], 0.95)], [7, 7]);
  });
  it('the busiest window counts times in [t, t + width)', () => {
    // [99.9, 199.9) holds 99.9, 100, 150 and 199; no other window holds more.
    assert.equal(busiestWindow([0, 50, 99.9, 100, 150, 199, 500], 100), 4);
    assert.equal(busiestWindow([0, 100, 200, 300], 100), 1);
    assert.equal(busiestWindow([], 100), 0);
  });
});

describe('bench:kube model of the backoff alone', () => {
  it('a node retries first at the end of the wait under way when the outage ends', () => {
    // Waits of 100 ms each (+1 ms per failed attempt): attempts at 0, 101, 202, 303; the outage ends at 250.
    const back = modelReconnects(1, 250, () => ({ next: () => 100 }));
    assert.deepEqual(back, [53]);
  });
});
