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
