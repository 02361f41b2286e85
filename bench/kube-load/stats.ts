/** The arithmetic of bench/kube-load.ts: percentiles and the busiest window. */

/** The q-quantile (0..1) of xs, nearest rank. */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** The most times within any window [t, t + width) (times in ms). */
export function busiestWindow(times: number[], width: number): number {
  const s = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < s.length; i++) {
    while (s[i] - s[j] >= width) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

/**
 * The backoff alone, without I/O: when each of n nodes that lost the server
 * at the same instant retries first after an outage of outageMs, given the
 * wait each draws next (a Backoff's next()). Every attempt is taken to fail
 * in 1 ms. Returns ms after the server answers again.
 */
export function modelReconnects(n: number, outageMs: number, newBackoff: () => { next(): number }): number[] {
  const back: number[] = [];
  for (let i = 0; i < n; i++) {
    const b = newBackoff();
    let t = 0;
    while (t < outageMs) t += b.next() + 1;
    back.push(t - outageMs);
  }
  return back;
}
