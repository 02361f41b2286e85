/**
 * Typed reading of a parsed YAML document. A Node is a value plus its field
 * path; each read checks the type, reports a precise problem when it does not
 * fit and returns undefined, so validation goes on and a file shows all its
 * problems at once.
 */
import { Problem, Severity } from './model';
import { describe, didYouMean, formatPath, makeProblem, oneOf } from './problems';
import { Path, PositionMap } from './yaml-positions';

/** The problems of one document, and where its nodes are. */
export class Doc {
  readonly problems: Problem[] = [];
  constructor(
    readonly file: string,
    readonly positions: PositionMap,
  ) {}

  report(severity: Severity, path: Path, expected: string, found: string, hint?: string, atKey = false): void {
    this.problems.push(makeProblem(this.file, this.positions, { severity, path, expected, found, hint, atKey }));
  }

  get errors(): number {
    return this.problems.filter((p) => p.severity === 'error').length;
  }
}

export class Node {
  constructor(
    readonly doc: Doc,
    readonly path: Path,
    readonly value: unknown,
  ) {}

  /** The value as "found …" names it. */
  get found(): string {
    return describe(this.value, this.doc.positions.isEmpty(this.path));
  }

  /** "spec.kprobes[0].args[1] (line 12)", for messages that point back at another place. */
  get ref(): string {
    return `${formatPath(this.path)} (line ${this.doc.positions.valueAt(this.path).line})`;
  }

  /** The last path segment: the field name or list index. */
  get key(): string | number {
    return this.path[this.path.length - 1];
  }

  /** Reports an error about this value; returns undefined so callers can `return node.error(…)`. */
  error(expected: string, hint?: string, found = this.found): undefined {
    this.doc.report('error', this.path, expected, found, hint);
    return undefined;
  }

  report(severity: Severity, expected: string, hint?: string, found = this.found, atKey = false): void {
    this.doc.report(severity, this.path, expected, found, hint, atKey);
  }

  child(key: string | number, value: unknown): Node {
    return new Node(this.doc, [...this.path, key], value);
  }

  string(expected = 'a non-empty string'): string | undefined {
    return typeof this.value === 'string' && this.value !== '' ? this.value : this.error(expected);
  }

  boolean(): boolean | undefined {
    return typeof this.value === 'boolean' ? this.value : this.error('true or false');
  }

  integer(min: number, max: number, what = 'an integer'): number | undefined {
    const v = this.value;
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
    return this.error(`${what} from ${min} to ${max}`);
  }

  /** A string from a fixed set; a near miss gets a suggestion. */
  choice<T extends string>(choices: readonly T[], hint?: string): T | undefined {
    const v = this.value;
    if (typeof v === 'string' && (choices as readonly string[]).includes(v)) return v as T;
    return this.error(oneOf(choices), (typeof v === 'string' ? didYouMean(v, choices) : undefined) ?? hint);
  }

  /**
   * A scalar as text: strings as written, integers as their source text (so
   * `0x10` stays hex and 64-bit values keep every digit). Values lists accept
   * both, as Tetragon's examples write ports and numbers either way.
   */
  scalarText(expected: string): string | undefined {
    if (typeof this.value === 'string') return this.value;
    if (typeof this.value === 'number' && Number.isInteger(this.value)) {
      return this.doc.positions.sourceAt(this.path) ?? String(this.value);
    }
    return this.error(expected);
  }

  /** A list of `min` to `max` items; `noun` names them in errors ("values"), `hint` says how to stay within the cap. */
  list(max: number, noun: string, min = 0, hint?: string): Node[] | undefined {
    if (!Array.isArray(this.value)) return this.error(`a list of ${noun}`);
    if (this.value.length > max) {
      return this.error(`at most ${max} ${noun} (tally's limit per ${this.parentNoun()})`, hint, `${this.value.length} ${noun}`);
    }
    if (this.value.length < min) return this.error(min === 1 ? `at least one of ${noun}` : `at least ${min} ${noun}`);
    return this.value.map((v, i) => this.child(i, v));
  }

  /** A mapping whose keys are all in `known`; unknown keys are errors with a suggestion. */
  mapping(known: readonly string[], expected = 'a mapping'): Fields | undefined {
    const v = this.value;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return this.error(expected);
    const obj = v as Record<string, unknown>;
    for (const k of Object.keys(obj)) {
      if (!known.includes(k)) {
        this.doc.report('error', [...this.path, k], oneOf(known), `unknown key ${describe(k)}`, didYouMean(k, known), true);
      }
    }
    return new Fields(this, obj);
  }

  /** What holds this list: the nearest field name above it ("kprobes" for spec.kprobes[0].selectors). */
  private parentNoun(): string {
    for (let i = this.path.length - 2; i >= 0; i--) {
      const k = this.path[i];
      if (typeof k === 'string') return singular(k);
    }
    return 'policy';
  }
}

/** "selectors" → "selector", "matchArgs" → "matchArgs entry", for "the limit is 4 per selector". */
function singular(key: string): string {
  if (key === 'spec') return 'policy';
  if (key === 'kprobes') return 'kprobe';
  if (key === 'uprobes') return 'uprobe';
  if (key === 'tracepoints') return 'tracepoint';
  if (key === 'selectors') return 'selector';
  if (key === 'metrics') return 'metric';
  if (key === 'labels') return 'label';
  if (/^match/.test(key)) return `${key} entry`;
  return key;
}

/** A mapping's fields, read by name. */
export class Fields {
  constructor(
    readonly node: Node,
    private readonly obj: Record<string, unknown>,
  ) {}

  has(key: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.obj, key);
  }

  /** The field, or undefined when absent. */
  get(key: string): Node | undefined {
    return this.has(key) ? this.node.child(key, this.obj[key]) : undefined;
  }

  /** The field; when absent, an error naming it, placed at the mapping (where it should be added). */
  require(key: string, expected: string): Node | undefined {
    if (this.has(key)) return this.get(key);
    this.node.doc.report('error', [...this.node.path, key], expected, 'no such field');
    return undefined;
  }
}
