/**
 * Wording of problems: paths, found values, suggestions. Kept in one place so
 * every message has the same shape: `expected X, found Y; how to fix`.
 */
import { Problem, Severity } from './model';
import { Path, PositionMap } from './yaml-positions';

/** `spec.kprobes[0].args[1].type`; keys that are not identifiers are quoted: `metadata.labels["a.b/c"]`. */
export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    // A key of thousands of characters would make the one line unreadable; the position says where it is.
    else if (seg.length > 64) out += `[${JSON.stringify(`${seg.slice(0, 48)}…`)}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out || '(document)';
}

/** How a YAML value is named in "found …". */
export function describe(value: unknown, writtenAsNothing = false): string {
  if (writtenAsNothing) return 'nothing';
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return value.length > 64 ? `${JSON.stringify(`${value.slice(0, 48)}…`)} (${value.length} characters)` : JSON.stringify(value);
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'boolean') return `the boolean ${value}`;
  if (Array.isArray(value)) return value.length ? `a list of ${value.length}` : 'an empty list';
  return 'a mapping';
}

/** "an int arg", "a sock arg": arg types read as spoken (an fd, an skb). */
export function anArg(type: string): string {
  return `${/^i/.test(type) || type === 'fd' || type === 'skb' ? 'an' : 'a'} ${type} arg`;
}

/** "int, uint8, …" lists are written out in full: the reader should not have to look them up. */
export function oneOf(choices: readonly string[]): string {
  return choices.length === 1 ? choices[0] : `one of ${choices.join(', ')}`;
}

/** Damerau-Levenshtein distance (optimal string alignment), for "did you mean". */
function distance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push([i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/**
 * The candidate closest to `word`, when it is close enough to be a likely
 * typo: a different case, or at most a third of the letters wrong.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const sameCase = candidates.find((c) => c.toLowerCase() === lower);
  if (sameCase) return sameCase;
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dist = distance(lower, c.toLowerCase());
    if (dist < bestD) {
      best = c;
      bestD = dist;
    }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const c = closest(word, candidates);
  return c === undefined ? undefined : `did you mean "${c}"?`;
}

const PREFIX: Record<Severity, string> = { error: '', unsupported: 'unsupported: ', warning: 'warning: ' };

export interface ProblemSpec {
  severity: Severity;
  path: Path;
  expected: string;
  found: string;
  hint?: string;
  /** Point at the key naming the field rather than at its value (unknown keys, unsupported fields). */
  atKey?: boolean;
}

export function makeProblem(file: string, positions: PositionMap | undefined, spec: ProblemSpec): Problem {
  const pos = positions ? (spec.atKey ? positions.keyAt(spec.path) : positions.valueAt(spec.path)) : { line: 1, column: 1 };
  const hint = spec.hint ? `; ${spec.hint}` : '';
  return {
    file,
    line: pos.line,
    column: pos.column,
    path: formatPath(spec.path),
    expected: spec.expected,
    found: spec.found,
    severity: spec.severity,
    message: `${PREFIX[spec.severity]}expected ${spec.expected}, found ${spec.found}${hint}`,
  };
}

/** A problem with the file as a whole (unreadable, not YAML, empty), at `line`:`column`, path `(file)`. */
export function fileProblem(file: string, expected: string, found: string, line = 1, column = 1, hint?: string): Problem {
  return { ...makeProblem(file, undefined, { severity: 'error', path: [], expected, found, hint }), path: '(file)', line, column };
}

/** File order: by line, then column; stable otherwise. */
export function byPosition(a: Problem, b: Problem): number {
  return a.line - b.line || a.column - b.column;
}

/** The line `tally policy check` prints for a problem. */
export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.path}: ${p.message}`;
}
