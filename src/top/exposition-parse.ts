/**
 * Reads the Prometheus text exposition format (0.0.4), as the agent serves
 * it to a client that asks for nothing else: enough for `tally top`, which
 * needs each sample's name, labels and value. Comments (# HELP, # TYPE) are
 * skipped. A line that does not parse throws, naming its line number: a
 * client that guessed past it would show wrong numbers.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export class ExpositionError extends Error {}

const NAME = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;
const LABEL_NAME = /[a-zA-Z_][a-zA-Z0-9_]*/y;

function value(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  const n = Number(text);
  if (text === '' || Number.isNaN(n)) throw new Error(`"${text}" is not a number`);
  return n;
}

/** Label pairs from `{` to the matching `}`; returns them and the index after `}`. */
function labelsAt(line: string, start: number): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  let i = start + 1;
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++;
    if (line[i] === '}') return [labels, i + 1];
    LABEL_NAME.lastIndex = i;
    const m = LABEL_NAME.exec(line);
    if (!m || line[i + m[0].length] !== '=' || line[i + m[0].length + 1] !== '"') throw new Error(`bad label at column ${i + 1}`);
    i += m[0].length + 2;
    let v = '';
    // Escapes of the format: \\, \" and \n.
    for (; i < line.length && line[i] !== '"'; i++) {
      if (line[i] === '\\') {
        i++;
        v += line[i] === 'n' ? '\n' : line[i];
      } else v += line[i];
    }
    if (i >= line.length) throw new Error('unterminated label value');
    labels[m[0]] = v;
    i++;
  }
}

export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n];
    if (line.trim() === '' || line.startsWith('#')) continue;
    try {
      NAME.lastIndex = 0;
      const m = NAME.exec(line);
      if (!m) throw new Error('no metric name');
      let i = m[0].length;
      let labels: Record<string, string> = {};
      if (line[i] === '{') [labels, i] = labelsAt(line, i);
      // The value, then an optional timestamp.
      const [v] = line.slice(i).trim().split(/\s+/);
      out.push({ name: m[0], labels, value: value(v ?? '') });
    } catch (e) {
      throw new ExpositionError(`line ${n + 1} of /metrics does not parse (${(e as Error).message}): ${line.slice(0, 120)}`);
    }
  }
  return out;
}
