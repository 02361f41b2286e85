/**
 * Renders a Helm chart's templates without helm, for tests on a machine that
 * has none. It implements exactly the Go text/template and Helm subset the
 * tally chart uses, with Helm's semantics where they matter (values numbers
 * are float64 and print as Go prints them; missing map keys are empty; a
 * field of nothing is an error), and throws on anything else: an unknown
 * function, keyword or syntax fails the test instead of rendering something
 * helm would not.
 *
 * Supported: {{ }} with {{- and -}} trimming, comments, pipelines with |,
 * parentheses, $variables (:= and =), .Field chains, string/number/bool/nil
 * literals; if / else if / else, with / else, range (lists and maps, with
 * $k, $v :=) / else, define; .Values .Release .Chart .Template .Files (Get,
 * Glob); the functions in FUNCS below.
 *
 * Go ints (integer literals in templates, results of int) are bigints here;
 * values.yaml numbers are JS numbers, Go's float64.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import * as yaml from 'js-yaml';

export class TemplateError extends Error {}

// ---------------------------------------------------------------- values --

/** A Go struct such as .Release: reading a field it lacks is an error, unlike a map's key. */
class Struct {
  constructor(
    readonly typeName: string,
    readonly fields: Record<string, unknown>,
  ) {}
}

/** Helm's .Files: chart files outside templates/, by path. */
export class ChartFiles {
  constructor(readonly files: ReadonlyMap<string, string>) {}
  Get(name: unknown): string {
    if (typeof name !== 'string') throw new TemplateError(`.Files.Get wants a path, got ${describe(name)}`);
    return this.files.get(name) ?? '';
  }
  Glob(pattern: unknown): ChartFiles {
    if (typeof pattern !== 'string') throw new TemplateError(`.Files.Glob wants a pattern, got ${describe(pattern)}`);
    const re = globToRegExp(pattern);
    return new ChartFiles(new Map([...this.files].filter(([p]) => re.test(p))));
  }
}

/** Glob as Helm's .Files.Glob reads it: * and ? stay within a path segment, ** crosses them. */
function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*' && pattern[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if ('[]{}\\'.includes(c)) throw new TemplateError(`glob pattern "${pattern}": "${c}" is not supported here`);
    else re += c.replace(/[.+^$()|]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function describe(v: unknown): string {
  if (v === undefined || v === null) return 'nil';
  if (typeof v === 'bigint') return `int ${v}`;
  if (typeof v === 'number') return `float64 ${v}`;
  if (typeof v === 'string') return `string ${JSON.stringify(v)}`;
  if (Array.isArray(v)) return 'list';
  if (v instanceof Struct) return v.typeName;
  if (v instanceof ChartFiles) return 'Files';
  return typeof v === 'object' ? 'map' : typeof v;
}

/** Go's %v of a float64: shortest digits, exponent form from 1e+06 up and below 1e-04. */
export function goFloat(x: number): string {
  if (!Number.isFinite(x)) throw new TemplateError(`cannot print ${x}`);
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const [mant, expText] = x.toExponential().split('e');
  const exp = Number(expText);
  if (exp < -4 || exp >= 6) return `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return String(x);
}

/** What {{ x }} prints, as Helm prints it (nothing for a missing value). */
function print(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return goFloat(v);
  throw new TemplateError(`printing a ${describe(v)} is not supported (it would print Go syntax)`);
}

/** Go template truth: false, 0, nil, and empty strings, lists and maps are false. */
function truth(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'bigint') return v !== 0n;
  if (typeof v === 'string') return v.length > 0;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof ChartFiles) return v.files.size > 0;
  if (v instanceof Struct) return true;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  throw new TemplateError(`truth of ${describe(v)}`);
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Struct) && !(v instanceof ChartFiles);
}

function wantString(fn: string, v: unknown): string {
  if (typeof v !== 'string') throw new TemplateError(`${fn}: wants a string, got ${describe(v)}`);
  return v;
}

function wantInt(fn: string, v: unknown): number {
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  throw new TemplateError(`${fn}: wants a whole number, got ${describe(v)}`);
}

/** sprig's toYaml: sorted keys, no trailing newline; the output parses to the same data as helm's. */
function toYaml(v: unknown): string {
  const check = (x: unknown): void => {
    if (typeof x === 'bigint' || x instanceof Struct || x instanceof ChartFiles) throw new TemplateError(`toYaml of ${describe(x)} is not supported`);
    if (Array.isArray(x)) x.forEach(check);
    else if (isMap(x)) Object.values(x).forEach(check);
  };
  check(v);
  return yaml.dump(v ?? null, { sortKeys: true, lineWidth: -1, noRefs: true, noArrayIndent: true }).replace(/\n$/, '');
}

/** Go's %q for the strings charts quote: JSON's escapes are a subset YAML reads the same way. */
function goQuote(s: string): string {
  return JSON.stringify(s);
}

// ------------------------------------------------------------- functions --

type Fn = (args: unknown[], r: Renderer) => unknown;

function arity(name: string, args: unknown[], n: number): void {
  if (args.length !== n) throw new TemplateError(`${name}: wants ${n} arguments, got ${args.length}`);
}

const FUNCS: Record<string, Fn> = {
  include: (a, r) => {
    arity('include', a, 2);
    return r.include(wantString('include', a[0]), a[1]);
  },
  toYaml: (a) => (arity('toYaml', a, 1), toYaml(a[0])),
  fromYaml: (a) => {
    arity('fromYaml', a, 1);
    const v = yaml.load(wantString('fromYaml', a[0]));
    if (v === undefined || v === null) return {};
    if (!isMap(v)) throw new TemplateError(`fromYaml: the YAML is a ${describe(v)}, not a map`);
    return v;
  },
  indent: (a) => {
    arity('indent', a, 2);
    const pad = ' '.repeat(wantInt('indent', a[0]));
    return pad + wantString('indent', a[1]).replace(/\n/g, '\n' + pad);
  },
  nindent: (a) => {
    arity('nindent', a, 2);
    const pad = ' '.repeat(wantInt('nindent', a[0]));
    return '\n' + pad + wantString('nindent', a[1]).replace(/\n/g, '\n' + pad);
  },
  quote: (a) => a.filter((x) => x !== undefined && x !== null).map((x) => goQuote(print(x))).join(' '),
  default: (a) => {
    if (a.length < 1 || a.length > 2) throw new TemplateError(`default: wants 1 or 2 arguments, got ${a.length}`);
    return a.length === 1 || !truth(a[1]) ? a[0] : a[1];
  },
  printf: (a) => {
    const format = wantString('printf', a[0]);
    let i = 1;
    const out = format.replace(/%(.)/g, (_m, verb: string) => {
      if (verb === '%') return '%';
      if (i >= a.length) throw new TemplateError(`printf "${format}": too few arguments`);
      const v = a[i++];
      if (verb === 's' && typeof v === 'string') return v;
      if (verb === 'd' && typeof v === 'bigint') return v.toString();
      if (verb === 'v') return print(v);
      throw new TemplateError(`printf "${format}": %${verb} of ${describe(v)} is not supported`);
    });
    if (i !== a.length) throw new TemplateError(`printf "${format}": ${a.length - i} extra arguments`);
    return out;
  },
  // fmt.Sprint: a space between two operands when neither is a string.
  print: (a) => {
    if (a.some((v) => v === undefined || v === null)) throw new TemplateError('print of nil is not supported');
    return a.map((v, i) => (i > 0 && typeof v !== 'string' && typeof a[i - 1] !== 'string' ? ' ' : '') + print(v)).join('');
  },
  sha256sum: (a) => (arity('sha256sum', a, 1), crypto.createHash('sha256').update(wantString('sha256sum', a[0])).digest('hex')),
  trunc: (a) => {
    arity('trunc', a, 2);
    const n = wantInt('trunc', a[0]);
    const s = wantString('trunc', a[1]);
    if (n < 0) throw new TemplateError('trunc: negative lengths are not supported');
    return s.slice(0, n);
  },
  trimSuffix: (a) => {
    arity('trimSuffix', a, 2);
    const suffix = wantString('trimSuffix', a[0]);
    const s = wantString('trimSuffix', a[1]);
    return suffix && s.endsWith(suffix) ? s.slice(0, -suffix.length) : s;
  },
  replace: (a) => (arity('replace', a, 3), wantString('replace', a[2]).split(wantString('replace', a[0])).join(wantString('replace', a[1]))),
  // sprig's regexReplaceAll REGEX STRING REPLACEMENT, for the RE2 patterns
  // that mean the same in JavaScript; a leading (?m) becomes the m flag.
  regexReplaceAll: (a) => {
    arity('regexReplaceAll', a, 3);
    let re = wantString('regexReplaceAll', a[0]);
    let flags = 'g';
    if (re.startsWith('(?m)')) {
      re = re.slice(4);
      flags += 'm';
    }
    if (/\(\?[a-z]|\\[pPz]|\$\{/.test(re)) throw new TemplateError(`regexReplaceAll: RE2 syntax not supported here: ${re}`);
    const repl = wantString('regexReplaceAll', a[2]);
    if (repl.includes('$')) throw new TemplateError('regexReplaceAll: $ in the replacement is not supported here');
    return wantString('regexReplaceAll', a[1]).replace(new RegExp(re, flags), repl);
  },
  upper: (a) => (arity('upper', a, 1), wantString('upper', a[0]).toUpperCase()),
  lower: (a) => (arity('lower', a, 1), wantString('lower', a[0]).toLowerCase()),
  contains: (a) => (arity('contains', a, 2), wantString('contains', a[1]).includes(wantString('contains', a[0]))),
  join: (a) => {
    arity('join', a, 2);
    if (!Array.isArray(a[1])) throw new TemplateError(`join: wants a list, got ${describe(a[1])}`);
    return a[1].map(print).join(wantString('join', a[0]));
  },
  // sprig's append: a new list, the item last; the list itself is unchanged.
  append: (a) => {
    arity('append', a, 2);
    if (!Array.isArray(a[0])) throw new TemplateError(`append: wants a list, got ${describe(a[0])}`);
    return [...a[0], a[1]];
  },
  has: (a) => {
    arity('has', a, 2);
    if (a[1] === undefined || a[1] === null) return false;
    if (!Array.isArray(a[1])) throw new TemplateError(`has: wants a list, got ${describe(a[1])}`);
    return a[1].some((x) => x === a[0]);
  },
  base: (a) => {
    arity('base', a, 1);
    const s = wantString('base', a[0]).replace(/\/+$/, '');
    return s === '' ? (a[0] === '' ? '.' : '/') : path.posix.basename(s);
  },
  // sprig's int (cast.ToInt): floats truncate, numeric strings parse, anything else is 0.
  int: (a) => {
    arity('int', a, 1);
    const v = a[0];
    if (typeof v === 'bigint') return v;
    if (typeof v === 'number') return BigInt(Math.trunc(v));
    if (typeof v === 'string') return /^[+-]?\d+$/.test(v.trim()) ? BigInt(v.trim()) : 0n;
    if (v === undefined || v === null) return 0n;
    throw new TemplateError(`int of ${describe(v)} is not supported`);
  },
  // sprig's omit: a copy of the map without the named keys.
  omit: (a) => {
    if (a.length < 1 || !isMap(a[0])) throw new TemplateError(`omit: wants a map first, got ${describe(a[0])}`);
    const keys = a.slice(1).map((k) => wantString('omit', k));
    return Object.fromEntries(Object.entries(a[0]).filter(([k]) => !keys.includes(k)));
  },
  not: (a) => (arity('not', a, 1), !truth(a[0])),
  eq: (a) => {
    if (a.length < 2) throw new TemplateError('eq: wants at least 2 arguments');
    return a.slice(1).some((b) => goEqual(a[0], b));
  },
  ne: (a) => (arity('ne', a, 2), !goEqual(a[0], a[1])),
};

function goEqual(x: unknown, y: unknown): boolean {
  const kind = (v: unknown): string => (v === undefined || v === null ? 'nil' : typeof v);
  if (kind(x) !== kind(y) || !['string', 'number', 'bigint', 'boolean'].includes(kind(x))) {
    throw new TemplateError(`eq/ne: cannot compare ${describe(x)} with ${describe(y)}`);
  }
  return x === y;
}

// ------------------------------------------------------------------ lexer --

type Token =
  | { t: 'field'; names: string[] } // .A.B, or . alone (names empty)
  | { t: 'var'; name: string; names: string[] } // $x.A.B
  | { t: 'ident'; name: string }
  | { t: 'string'; value: string }
  | { t: 'number'; value: number | bigint }
  | { t: 'bool'; value: boolean }
  | { t: 'nil' }
  | { t: 'pipe' }
  | { t: 'lparen' }
  | { t: 'rparen'; names: string[] } // ) followed by .A.B
  | { t: 'declare' }
  | { t: 'assign' }
  | { t: 'comma' };

interface Action {
  tokens: Token[];
  line: number;
}

type Piece = { kind: 'text'; text: string } | { kind: 'action'; action: Action };

const KEYWORDS = new Set(['if', 'else', 'end', 'range', 'with', 'define', 'nil', 'true', 'false', 'template', 'block', 'break', 'continue']);

/** Splits a template into text and actions, applying {{- and -}}. */
function lex(src: string, name: string): Piece[] {
  const pieces: Piece[] = [];
  let pos = 0;
  let trimNext = false;
  const lineAt = (p: number): number => src.slice(0, p).split('\n').length;
  const fail = (p: number, msg: string): never => {
    throw new TemplateError(`${name}:${lineAt(p)}: ${msg}`);
  };
  while (pos < src.length) {
    const open = src.indexOf('{{', pos);
    let text = src.slice(pos, open < 0 ? src.length : open);
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, '');
    trimNext = false;
    if (open < 0) {
      pieces.push({ kind: 'text', text });
      break;
    }
    let p = open + 2;
    // "{{- " (a dash and one white space) trims the white space before it.
    if (/^-[ \t\r\n]/.test(src.slice(p, p + 2))) {
      text = text.replace(/[ \t\r\n]+$/, '');
      p += 2;
    }
    pieces.push({ kind: 'text', text });
    const line = lineAt(open);
    // A comment stands right after the delimiter and its trim marker, and
    // right before the closing ones.
    if (src.startsWith('/*', p)) {
      const close = src.indexOf('*/', p + 2);
      if (close < 0) fail(open, 'unclosed comment');
      const q = close + 2;
      const m = /^([ \t\r\n]-)?}}/.exec(src.slice(q));
      if (!m) fail(open, 'comment ends before the closing delimiter');
      if (m![1]) trimNext = true;
      pos = q + m![0].length;
      continue;
    }
    const tokens: Token[] = [];
    for (;;) {
      const ws = /^[ \t\r\n]*/.exec(src.slice(p))![0];
      p += ws.length;
      if (src.startsWith('}}', p)) {
        p += 2;
        break;
      }
      if (src.startsWith('-}}', p)) {
        if (ws.length === 0) fail(p, 'a trim marker needs a space before it: " -}}"');
        trimNext = true;
        p += 3;
        break;
      }
      if (p >= src.length) fail(open, 'unclosed action');
      const rest = src.slice(p);
      let m: RegExpExecArray | null;
      if ((m = /^\.((?:[A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z_][A-Za-z0-9_]*)*)?/.exec(rest)) && m[0].length > 0) {
        tokens.push({ t: 'field', names: m[1] ? m[1].split('.') : [] });
      } else if ((m = /^\$([A-Za-z_][A-Za-z0-9_]*)?((?:\.[A-Za-z_][A-Za-z0-9_]*)*)/.exec(rest))) {
        tokens.push({ t: 'var', name: '$' + (m[1] ?? ''), names: m[2] ? m[2].slice(1).split('.') : [] });
      } else if ((m = /^"((?:[^"\\\n]|\\.)*)"/.exec(rest))) {
        tokens.push({ t: 'string', value: JSON.parse(m[0]) as string });
      } else if ((m = /^`([^`]*)`/.exec(rest))) {
        tokens.push({ t: 'string', value: m[1] });
      } else if ((m = /^-?\d+(\.\d+)?(?![A-Za-z0-9_.])/.exec(rest))) {
        // Go untyped constants: an integer literal is an int, one with a point a float64.
        tokens.push({ t: 'number', value: m[1] ? Number(m[0]) : BigInt(m[0]) });
      } else if ((m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest))) {
        const w = m[0];
        if (w === 'true' || w === 'false') tokens.push({ t: 'bool', value: w === 'true' });
        else if (w === 'nil') tokens.push({ t: 'nil' });
        else tokens.push({ t: 'ident', name: w });
      } else if ((m = /^\)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)/.exec(rest))) {
        tokens.push({ t: 'rparen', names: m[1] ? m[1].slice(1).split('.') : [] });
      } else if ((m = /^:=/.exec(rest))) tokens.push({ t: 'declare' });
      else if ((m = /^[|(=,]/.exec(rest))) {
        tokens.push(m[0] === '|' ? { t: 'pipe' } : m[0] === '(' ? { t: 'lparen' } : m[0] === '=' ? { t: 'assign' } : { t: 'comma' });
      } else fail(p, `unexpected "${rest.slice(0, 10)}" in action`);
      p += m![0].length;
    }
    if (tokens.length === 0) fail(open, 'empty action');
    pieces.push({ kind: 'action', action: { tokens, line } });
    pos = p;
  }
  return pieces;
}

// ----------------------------------------------------------------- parser --

type Operand =
  | { k: 'field'; names: string[] }
  | { k: 'var'; name: string; names: string[] }
  | { k: 'fn'; name: string }
  | { k: 'const'; value: unknown }
  | { k: 'paren'; pipe: Pipeline; names: string[] };

interface Pipeline {
  decl: string[];
  assign: boolean;
  cmds: Operand[][];
}

type Node =
  | { n: 'text'; text: string }
  | { n: 'out'; pipe: Pipeline; line: number }
  | { n: 'if' | 'with'; pipe: Pipeline; body: Node[]; alt: Node[]; line: number }
  | { n: 'range'; pipe: Pipeline; body: Node[]; alt: Node[]; line: number };

class Parser {
  private i = 0;
  readonly defines = new Map<string, Node[]>();

  constructor(
    private readonly pieces: Piece[],
    private readonly name: string,
  ) {}

  private fail(line: number, msg: string): never {
    throw new TemplateError(`${this.name}:${line}: ${msg}`);
  }

  /** The whole file; defines are collected aside. */
  parseFile(): Node[] {
    const { nodes, stop } = this.parseList();
    if (stop) this.fail(stop.line, `unexpected {{${stop.word}}}`);
    return nodes;
  }

  /** Nodes up to an {{end}} or {{else ...}}, which is returned (not consumed into nodes). */
  private parseList(): { nodes: Node[]; stop?: { word: 'end' | 'else'; action: Action; line: number } } {
    const nodes: Node[] = [];
    while (this.i < this.pieces.length) {
      const piece = this.pieces[this.i++];
      if (piece.kind === 'text') {
        if (piece.text) nodes.push({ n: 'text', text: piece.text });
        continue;
      }
      const a = piece.action;
      const first = a.tokens[0];
      const word = first.t === 'ident' && KEYWORDS.has(first.name) ? first.name : undefined;
      if (word === 'end' || word === 'else') return { nodes, stop: { word, action: a, line: a.line } };
      if (word === 'if' || word === 'with' || word === 'range') {
        nodes.push(this.parseControl(word, a.tokens.slice(1), a.line));
      } else if (word === 'define') {
        const nameTok = a.tokens[1];
        if (a.tokens.length !== 2 || nameTok.t !== 'string') this.fail(a.line, 'define wants one quoted name');
        const { nodes: body, stop } = this.parseList();
        if (!stop || stop.word !== 'end' || stop.action.tokens.length !== 1) this.fail(a.line, 'define without {{end}}');
        const defName = (nameTok as { value: string }).value;
        if (this.defines.has(defName)) this.fail(a.line, `"${defName}" is defined twice`);
        this.defines.set(defName, body);
      } else if (word) {
        this.fail(a.line, `{{${word}}} is not supported by this renderer`);
      } else {
        nodes.push({ n: 'out', pipe: this.parsePipeline(a.tokens, a.line, true), line: a.line });
      }
    }
    return { nodes };
  }

  private parseControl(word: 'if' | 'with' | 'range', tokens: Token[], line: number): Node {
    const pipe = this.parsePipeline(tokens, line, word === 'range');
    if (pipe.decl.length > 0 && word !== 'range') this.fail(line, `variables in {{${word}}} are not supported`);
    const { nodes: body, stop } = this.parseList();
    if (!stop) this.fail(line, `{{${word}}} without {{end}}`);
    let alt: Node[] = [];
    if (stop.word === 'else') {
      const rest = stop.action.tokens.slice(1);
      if (rest.length === 0) {
        const r = this.parseList();
        if (!r.stop || r.stop.word !== 'end') this.fail(line, `{{${word}}} ... {{else}} without {{end}}`);
        if (r.stop.action.tokens.length !== 1) this.fail(r.stop.line, 'unexpected tokens after end');
        alt = r.nodes;
      } else if (word === 'if' && rest[0].t === 'ident' && rest[0].name === 'if') {
        // {{else if x}} ... {{end}} is {{else}}{{if x}} ... {{end}}{{end}}: one end for both.
        alt = [this.parseControl('if', rest.slice(1), stop.line)];
      } else this.fail(stop.line, `{{else ${rest[0].t === 'ident' ? rest[0].name : '...'}}} is not supported`);
    } else if (stop.action.tokens.length !== 1) this.fail(stop.line, 'unexpected tokens after end');
    return { n: word, pipe, body, alt, line };
  }

  private parsePipeline(tokens: Token[], line: number, declOk: boolean): Pipeline {
    let toks = tokens;
    const decl: string[] = [];
    let assign = false;
    const di = toks.findIndex((t) => t.t === 'declare' || t.t === 'assign');
    if (di >= 0) {
      const head = toks.slice(0, di);
      for (let j = 0; j < head.length; j++) {
        const t = head[j];
        if (j % 2 === 0 && t.t === 'var' && t.names.length === 0 && t.name !== '$') decl.push(t.name);
        else if (j % 2 === 1 && t.t === 'comma') continue;
        else this.fail(line, 'malformed variable declaration');
      }
      assign = toks[di].t === 'assign';
      if (!declOk && !assign && decl.length > 1) this.fail(line, 'only range declares two variables');
      if (decl.length > 2) this.fail(line, 'too many variables');
      toks = toks.slice(di + 1);
    }
    const { pipe, next } = this.parseCommands(toks, 0, line, false);
    if (next !== toks.length) this.fail(line, 'unexpected ")"');
    return { decl, assign, cmds: pipe.cmds };
  }

  private parseCommands(toks: Token[], start: number, line: number, inParen: boolean): { pipe: Pipeline; next: number } {
    const cmds: Operand[][] = [];
    let cmd: Operand[] = [];
    let i = start;
    for (; i < toks.length; i++) {
      const t = toks[i];
      if (t.t === 'pipe') {
        if (cmd.length === 0) this.fail(line, 'empty command in pipeline');
        cmds.push(cmd);
        cmd = [];
      } else if (t.t === 'rparen') {
        if (!inParen) this.fail(line, 'unexpected ")"');
        break;
      } else if (t.t === 'lparen') {
        const inner = this.parseCommands(toks, i + 1, line, true);
        const close = toks[inner.next];
        if (!close || close.t !== 'rparen') this.fail(line, 'unclosed "("');
        cmd.push({ k: 'paren', pipe: inner.pipe, names: (close as { names: string[] }).names });
        i = inner.next;
      } else if (t.t === 'field') cmd.push({ k: 'field', names: t.names });
      else if (t.t === 'var') cmd.push({ k: 'var', name: t.name, names: t.names });
      else if (t.t === 'ident') {
        if (KEYWORDS.has(t.name)) this.fail(line, `unexpected keyword ${t.name}`);
        if (!(t.name in FUNCS) && t.name !== 'and' && t.name !== 'or') this.fail(line, `function "${t.name}" is not supported by this renderer`);
        cmd.push({ k: 'fn', name: t.name });
      } else if (t.t === 'string' || t.t === 'number' || t.t === 'bool') cmd.push({ k: 'const', value: t.value });
      else if (t.t === 'nil') cmd.push({ k: 'const', value: null });
      else this.fail(line, `unexpected ${t.t}`);
    }
    if (cmd.length === 0) this.fail(line, 'empty command in pipeline');
    cmds.push(cmd);
    return { pipe: { decl: [], assign: false, cmds }, next: i };
  }
}

// --------------------------------------------------------------- renderer --

interface Scope {
  vars: Map<string, unknown>[];
  template: string;
}

const NONE = Symbol('no piped value');

class Renderer {
  private depth = 0;

  constructor(
    private readonly templates: Map<string, Node[]>,
    private readonly defines: Map<string, Node[]>,
    private readonly top: Record<string, unknown>,
  ) {}

  render(name: string): string {
    const nodes = this.templates.get(name);
    if (!nodes) throw new TemplateError(`no template ${name}`);
    const root = this.withTemplate(name);
    return this.run(nodes, root, { vars: [new Map([['$', root]])], template: name });
  }

  /** The top-level dot; a Struct so that what this renderer lacks (.Capabilities) fails loudly. */
  private withTemplate(name: string): Struct {
    const base = name.split('/').slice(0, 2).join('/');
    return new Struct('the top-level object', { ...this.top, Template: new Struct('Template', { Name: name, BasePath: base }) });
  }

  /** Helm's include: a define, or another template file by its full name. */
  include(name: string, data: unknown): string {
    const nodes = this.defines.get(name) ?? this.templates.get(name);
    if (!nodes) throw new TemplateError(`include: no template "${name}"`);
    if (++this.depth > 100) throw new TemplateError(`include "${name}": too deep`);
    try {
      return this.run(nodes, data, { vars: [new Map([['$', data]])], template: name });
    } finally {
      this.depth--;
    }
  }

  private run(nodes: Node[], dot: unknown, scope: Scope): string {
    let out = '';
    for (const node of nodes) {
      try {
        out += this.node(node, dot, scope);
      } catch (e) {
        if (e instanceof TemplateError && 'line' in node && !e.message.startsWith(`${scope.template}:`)) {
          throw new TemplateError(`${scope.template}:${node.line}: ${e.message}`);
        }
        throw e;
      }
    }
    return out;
  }

  private inner(nodes: Node[], dot: unknown, scope: Scope, vars = new Map<string, unknown>()): string {
    scope.vars.push(vars);
    try {
      return this.run(nodes, dot, scope);
    } finally {
      scope.vars.pop();
    }
  }

  private node(node: Node, dot: unknown, scope: Scope): string {
    switch (node.n) {
      case 'text':
        return node.text;
      case 'out': {
        const v = this.pipeline(node.pipe, dot, scope);
        if (node.pipe.decl.length > 0) {
          this.bind(node.pipe, v, scope);
          return '';
        }
        return print(v);
      }
      case 'if': {
        const v = this.pipeline(node.pipe, dot, scope);
        return truth(v) ? this.inner(node.body, dot, scope) : this.inner(node.alt, dot, scope);
      }
      case 'with': {
        const v = this.pipeline(node.pipe, dot, scope);
        return truth(v) ? this.inner(node.body, v, scope) : this.inner(node.alt, dot, scope);
      }
      case 'range': {
        const v = this.pipeline(node.pipe, dot, scope);
        let items: Array<[unknown, unknown]>;
        if (v === undefined || v === null) items = [];
        else if (Array.isArray(v)) items = v.map((x, i) => [BigInt(i), x]);
        else if (v instanceof ChartFiles) items = [...v.files.keys()].sort().map((k) => [k, v.files.get(k)]);
        else if (isMap(v)) items = Object.keys(v).sort().map((k) => [k, v[k]]);
        else throw new TemplateError(`range over ${describe(v)} is not supported`);
        if (items.length === 0) return this.inner(node.alt, dot, scope);
        let out = '';
        for (const [k, x] of items) {
          const vars = new Map<string, unknown>();
          if (node.pipe.decl.length === 1) vars.set(node.pipe.decl[0], x);
          if (node.pipe.decl.length === 2) {
            vars.set(node.pipe.decl[0], k);
            vars.set(node.pipe.decl[1], x);
          }
          out += this.inner(node.body, x, scope, vars);
        }
        return out;
      }
    }
  }

  private bind(pipe: Pipeline, v: unknown, scope: Scope): void {
    const name = pipe.decl[0];
    if (pipe.assign) {
      for (let j = scope.vars.length - 1; j >= 0; j--) {
        if (scope.vars[j].has(name)) {
          scope.vars[j].set(name, v);
          return;
        }
      }
      throw new TemplateError(`undefined variable ${name}`);
    }
    scope.vars[scope.vars.length - 1].set(name, v);
  }

  private variable(name: string, scope: Scope): unknown {
    for (let j = scope.vars.length - 1; j >= 0; j--) if (scope.vars[j].has(name)) return scope.vars[j].get(name);
    throw new TemplateError(`undefined variable ${name}`);
  }

  private pipeline(pipe: Pipeline, dot: unknown, scope: Scope): unknown {
    let v: unknown = NONE;
    for (const cmd of pipe.cmds) v = this.command(cmd, dot, scope, v);
    return v;
  }

  private command(cmd: Operand[], dot: unknown, scope: Scope, piped: unknown): unknown {
    const [head, ...rest] = cmd;
    if (head.k === 'fn') {
      if (head.name === 'and' || head.name === 'or') {
        // Go's and/or return the first argument that decides, and evaluate no further.
        if (rest.length + (piped !== NONE ? 1 : 0) < 2) throw new TemplateError(`${head.name}: wants at least 2 arguments`);
        const thunks: Array<() => unknown> = rest.map((o) => () => this.operand(o, dot, scope));
        if (piped !== NONE) thunks.push(() => piped);
        let v: unknown;
        for (const t of thunks) {
          v = t();
          if (truth(v) === (head.name === 'or')) return v;
        }
        return v;
      }
      const args = rest.map((o) => this.operand(o, dot, scope));
      if (piped !== NONE) args.push(piped);
      return FUNCS[head.name](args, this);
    }
    const target = this.operand(head, dot, scope, true);
    if (typeof target === 'function') {
      const args = rest.map((o) => this.operand(o, dot, scope));
      if (piped !== NONE) args.push(piped);
      return (target as (...a: unknown[]) => unknown)(...args);
    }
    if (rest.length > 0 || piped !== NONE) throw new TemplateError(`can't give arguments to a ${describe(target)}, which is not a function`);
    return target;
  }

  private operand(o: Operand, dot: unknown, scope: Scope, methodOk = false): unknown {
    let v: unknown;
    let names: string[];
    switch (o.k) {
      case 'const':
        return o.value;
      case 'fn':
        // A function as an argument is called without arguments.
        if (!(o.name in FUNCS)) throw new TemplateError(`${o.name} without arguments`);
        return FUNCS[o.name]([], this);
      case 'field':
        v = dot;
        names = o.names;
        break;
      case 'var':
        v = this.variable(o.name, scope);
        names = o.names;
        break;
      case 'paren':
        v = this.pipeline(o.pipe, dot, scope);
        names = o.names;
        break;
    }
    for (let j = 0; j < names.length; j++) v = field(v, names[j], methodOk && j === names.length - 1);
    return v;
  }
}

/** .name of a value, with Go's rules: a map's missing key is nothing, a struct's is an error. */
function field(v: unknown, name: string, methodOk: boolean): unknown {
  if (v === undefined || v === null) throw new TemplateError(`nil pointer evaluating interface {}.${name}`);
  if (v instanceof ChartFiles) {
    if ((name === 'Get' || name === 'Glob') && methodOk) return (x: unknown): unknown => v[name](x);
    throw new TemplateError(`.Files.${name} is not supported here${name === 'Get' || name === 'Glob' ? ' as an argument' : ''}`);
  }
  if (v instanceof Struct) {
    if (!(name in v.fields)) throw new TemplateError(`can't evaluate field ${name} in type ${v.typeName}`);
    return v.fields[name];
  }
  if (isMap(v)) return Object.prototype.hasOwnProperty.call(v, name) ? v[name] : undefined;
  throw new TemplateError(`can't evaluate field ${name} in a ${describe(v)}`);
}

// ----------------------------------------------------------------- charts --

export interface Chart {
  dir: string;
  /** Chart.yaml as read. */
  meta: Record<string, unknown>;
  values: Record<string, unknown>;
  /** templates/* by full name, e.g. tally/templates/daemonset.yaml. */
  templates: Map<string, string>;
  /** What .Files holds: the chart's files outside templates/, minus .helmignore's. */
  files: Map<string, string>;
}

/** The .helmignore subset the chart uses: comments, "dir/" and basename globs. */
function ignored(rel: string, patterns: string[]): boolean {
  const parts = rel.split('/');
  return patterns.some((p) => {
    if (p.endsWith('/')) return parts.slice(0, -1).includes(p.slice(0, -1));
    if (p.includes('/')) throw new TemplateError(`.helmignore pattern "${p}" is not supported here`);
    return globToRegExp(p).test(parts[parts.length - 1]);
  });
}

export function loadChart(dir: string): Chart {
  const meta = yaml.load(fs.readFileSync(path.join(dir, 'Chart.yaml'), 'utf8')) as Record<string, unknown>;
  const values = (yaml.load(fs.readFileSync(path.join(dir, 'values.yaml'), 'utf8')) ?? {}) as Record<string, unknown>;
  const ignoreFile = path.join(dir, '.helmignore');
  const patterns = fs.existsSync(ignoreFile)
    ? fs.readFileSync(ignoreFile, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
    : [];
  const templates = new Map<string, string>();
  const files = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (r === 'charts') throw new TemplateError('subcharts are not supported here');
        walk(r);
      } else if (r.startsWith('templates/')) templates.set(`${meta.name}/${r}`, fs.readFileSync(path.join(dir, r), 'utf8'));
      else if (!['Chart.yaml', 'values.yaml', 'values.schema.json', '.helmignore'].includes(r) && !ignored(r, patterns)) {
        files.set(r, fs.readFileSync(path.join(dir, r), 'utf8'));
      }
    }
  };
  walk('');
  return { dir, meta, values, templates, files };
}

/** Helm's coalescing of user values over the chart's: maps merge, anything else replaces, null deletes. */
export function mergeValues(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(base);
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else if (isMap(v) && isMap(out[k])) out[k] = mergeValues(out[k] as Record<string, unknown>, v);
    else out[k] = structuredClone(v);
  }
  return out;
}

export interface RenderOptions {
  /** Values over the chart's values.yaml, as a -f file would give them. */
  values?: Record<string, unknown>;
  releaseName?: string;
  namespace?: string;
  /** Files added to (or replacing) the chart's, as if they were in the chart directory. */
  extraFiles?: Record<string, string>;
}

/** Chart.yaml's fields as .Chart names them. */
function chartStruct(meta: Record<string, unknown>): Struct {
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(meta)) fields[k === 'apiVersion' ? 'APIVersion' : k[0].toUpperCase() + k.slice(1)] = v;
  return new Struct('Chart', fields);
}

/** Renders every template not named _*, as helm template does; returns output by template name. */
export function renderChart(chart: Chart, opts: RenderOptions = {}): Map<string, string> {
  const files = new Map(chart.files);
  for (const [k, v] of Object.entries(opts.extraFiles ?? {})) files.set(k, v);
  const parsed = new Map<string, Node[]>();
  const defines = new Map<string, Node[]>();
  for (const [name, src] of chart.templates) {
    const parser = new Parser(lex(src, name), name);
    parsed.set(name, parser.parseFile());
    for (const [d, body] of parser.defines) {
      if (defines.has(d)) throw new TemplateError(`"${d}" is defined twice (again in ${name})`);
      defines.set(d, body);
    }
  }
  const top = {
    Values: mergeValues(chart.values, opts.values ?? {}),
    Release: new Struct('Release', {
      Name: opts.releaseName ?? 'tally',
      Namespace: opts.namespace ?? 'default',
      Service: 'Helm',
      IsInstall: true,
      IsUpgrade: false,
      Revision: 1n,
    }),
    Chart: chartStruct(chart.meta),
    Files: new ChartFiles(files),
  };
  const r = new Renderer(parsed, defines, top);
  const out = new Map<string, string>();
  for (const name of parsed.keys()) {
    if (path.posix.basename(name).startsWith('_')) continue;
    out.set(name, r.render(name));
  }
  return out;
}

/** The Kubernetes objects of rendered manifests (NOTES.txt left out), split on ---. */
export function manifests(rendered: Map<string, string>): Array<Record<string, unknown>> {
  const objects: Array<Record<string, unknown>> = [];
  for (const [name, text] of rendered) {
    if (name.endsWith('/NOTES.txt')) continue;
    for (const doc of yaml.loadAll(text, undefined, { filename: name })) {
      if (doc === null || doc === undefined) continue;
      if (!isMap(doc)) throw new TemplateError(`${name}: a document is a ${describe(doc)}, not an object`);
      objects.push(doc);
    }
  }
  return objects;
}
