/** Durations as flags take them: "500ms", "30s", "1m", "2h", or combined, "1m30s". */

export class DurationError extends Error {}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(flag: string, text: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m; (m = re.exec(text)); consumed = re.lastIndex) total += Number(m[1]) * UNIT_MS[m[2]];
  if (text === '' || consumed !== text.length) {
    throw new DurationError(`${flag} "${text}" is not a duration; write it like 30s, 1m or 1m30s (units: ms, s, m, h)`);
  }
  return total;
}
