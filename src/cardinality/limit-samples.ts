/**
 * One read of plain counters, keyed by labelKey, through a series limiter:
 * what SeriesReader does for the kernel's series, for tests and tools.
 */
import { Sample } from '../metrics/define';
import { OVERFLOW_KEY, OVERFLOW_LABELS, SeriesLimiter } from './series-limiter';

export function limitSamples(limiter: SeriesLimiter, samples: Map<string, Sample>, now = Date.now()): Sample[] {
  const out = new Map<string, Sample>();
  const addTo = (key: string, labels: Readonly<Record<string, string>>, value: number): void => {
    const s = out.get(key);
    if (s) s.value += value;
    else out.set(key, { labels: { ...labels }, value });
  };
  const flat: Sample[] = [];
  for (const [key, s] of samples) if (key !== OVERFLOW_KEY) limiter.know(key, s.labels, now);
  for (const [key, s] of samples) {
    const d = key === OVERFLOW_KEY ? ({ at: 'flat' } as const) : limiter.place(key, s.labels, now);
    if (d.at === 'own') addTo(key, s.labels, s.value);
    else if (d.at === 'rolled') addTo(d.series.key, d.series.labels, s.value);
    else flat.push(s);
  }
  if (flat.length) out.set(OVERFLOW_KEY, { labels: { ...OVERFLOW_LABELS }, value: flat.reduce((a, s) => a + s.value, 0) });
  limiter.forgetUnseen(now);
  return [...out.values()];
}
