/**
 * YAML parsing with positions. js-yaml returns plain values without source
 * positions, so its `listener` option is used to see every node being
 * composed: 'open' and 'close' nest like the nodes themselves, so a stack of
 * frames rebuilds the node tree, and each frame knows where its node starts
 * (the open position, past separating spaces and comments) and ends.
 *
 * Two quirks of js-yaml shape the rebuilding:
 * - a node can be composed inside another that ends up with the very same
 *   result (a flow mapping or a scalar read as a would-be implicit key of a
 *   block mapping), so a frame whose only child has its result is unwrapped;
 * - a mapping's children alternate key, value, but a block mapping may end
 *   with a failed attempt at one more key, which is dropped. Where the
 *   alternation still does not hold (explicit `?` keys, rolled-back attempts),
 *   the mapping's own position is used for everything below it: positions
 *   degrade, parsing never fails.
 */
import * as yaml from 'js-yaml';

/** A field path: mapping keys and list indexes from the document root. */
export type Path = readonly (string | number)[];

/** 1-based line and column, plus the 0-based character offset. */
export interface Position {
  offset: number;
  line: number;
  column: number;
}

interface PosNode {
  start: number;
  end: number;
  /** Written with nothing at all (`key:` with no value), as opposed to `null`. */
  empty: boolean;
  entries?: Map<string, { key: PosNode; value: PosNode }>;
  items?: PosNode[];
}

interface Frame {
  open: number;
  end: number;
  kind: string | null;
  result: unknown;
  children: Frame[];
}

/** Positions of the nodes of one document. */
export class PositionMap {
  constructor(
    private readonly text: string,
    private readonly lineStarts: readonly number[],
    private readonly root: PosNode | undefined,
  ) {}

  /** Where the value at `path` starts; the nearest known ancestor when unknown. */
  valueAt(path: Path): Position {
    return this.position(this.walk(path).node?.start ?? 0);
  }

  /** Where the key naming the last segment of `path` starts (a list item: the item). */
  keyAt(path: Path): Position {
    const w = this.walk(path);
    return this.position((w.complete ? w.key?.start : undefined) ?? w.node?.start ?? 0);
  }

  /** The value at `path` was written as nothing at all. */
  isEmpty(path: Path): boolean {
    const w = this.walk(path);
    return w.complete && w.node !== undefined && w.node.empty;
  }

  /** The source text of the value at `path`, e.g. to read a 64-bit integer without rounding. */
  sourceAt(path: Path): string | undefined {
    const w = this.walk(path);
    return w.complete && w.node ? this.text.slice(w.node.start, w.node.end).trim() : undefined;
  }

  private walk(path: Path): { node?: PosNode; key?: PosNode; complete: boolean } {
    let node = this.root;
    let key: PosNode | undefined;
    for (const seg of path) {
      if (typeof seg === 'number') {
        const item = node?.items?.[seg];
        if (!item) return { node, complete: false };
        key = node = item;
      } else {
        const entry = node?.entries?.get(seg);
        if (!entry) return { node, complete: false };
        key = entry.key;
        node = entry.value;
      }
    }
    return { node, key, complete: true };
  }

  position(offset: number): Position {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { offset, line: lo + 1, column: offset - this.lineStarts[lo] + 1 };
  }
}

export interface YamlDocument {
  /** 0-based among the non-empty documents of the stream. */
  index: number;
  value: unknown;
  positions: PositionMap;
}

export type YamlParse =
  | { ok: true; documents: YamlDocument[] }
  | { ok: false; line: number; column: number; reason: string };

/**
 * Parses every document of `text` (separated by `---`). Empty documents are
 * skipped, as kubectl does. The core schema keeps values to what JSON has:
 * no dates, no binary, no `<<` merges that would hide where a field came from.
 */
export function parseYamlStream(text: string): YamlParse {
  const roots: Frame[] = [];
  const stack: Frame[] = [];
  let values: unknown[];
  try {
    values = yaml.loadAll(text, undefined, {
      schema: yaml.CORE_SCHEMA,
      listener(this: yaml.State, event: yaml.EventType, state: yaml.State) {
        if (event === 'open') {
          stack.push({ open: state.position, end: state.position, kind: null, result: null, children: [] });
          return;
        }
        const f = stack.pop();
        if (!f) return;
        f.end = state.position;
        f.kind = state.kind;
        f.result = state.result;
        (stack.length ? stack[stack.length - 1].children : roots).push(f);
      },
    });
  } catch (e) {
    if (e instanceof yaml.YAMLException) {
      const mark = (e as yaml.YAMLException & { mark?: { line: number; column: number } }).mark;
      return { ok: false, line: (mark?.line ?? 0) + 1, column: (mark?.column ?? 0) + 1, reason: e.reason };
    }
    throw e;
  }
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) lineStarts.push(i + 1);
  // One root frame per document; if that ever fails to hold, positions fall back to 1:1.
  const aligned = roots.length === values.length;
  const documents: YamlDocument[] = [];
  values.forEach((value, i) => {
    if (value === null || value === undefined) return;
    const root = aligned ? build(text, roots[i]) : undefined;
    documents.push({ index: documents.length, value, positions: new PositionMap(text, lineStarts, root) });
  });
  return { ok: true, documents };
}

function skipSeparation(text: string, pos: number): number {
  while (pos < text.length) {
    const c = text[pos];
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === '\uFEFF') pos++;
    else if (c === '#') while (pos < text.length && text[pos] !== '\n') pos++;
    else break;
  }
  return pos;
}

function unwrap(f: Frame): Frame {
  while (f.children.length === 1 && f.children[0].result === f.result && typeof f.result === 'object' && f.result !== null) {
    f = f.children[0];
  }
  return f;
}

function build(text: string, frame: Frame): PosNode {
  const f = unwrap(frame);
  // No kind and no result: written as nothing. (An alias has no kind either, but a result.)
  const empty = f.kind === null && f.result === null;
  // An empty node's open position is right after its `key:` or `-`: the best place to point at.
  const node: PosNode = { start: empty ? frame.open : skipSeparation(text, frame.open), end: f.end, empty };
  if (f.kind === 'sequence' && Array.isArray(f.result) && f.children.length === f.result.length) {
    node.items = f.children.map((c) => build(text, c));
  } else if (f.kind === 'mapping' && f.result !== null && typeof f.result === 'object') {
    // A block mapping ends by failing to read one more key (before `---`, or a
    // line at its indentation that is no key): that attempt is a childless frame at the end.
    const last = f.children[f.children.length - 1];
    const children = f.children.length % 2 && last.kind === null && last.result === null ? f.children.slice(0, -1) : f.children;
    if (children.length % 2) return node;
    const keys = Object.keys(f.result);
    const entries = new Map<string, { key: PosNode; value: PosNode }>();
    for (let i = 0; i < children.length; i += 2) {
      const name = String(children[i].result);
      if (!keys.includes(name)) return node;
      entries.set(name, { key: build(text, children[i]), value: build(text, children[i + 1]) });
    }
    if (entries.size === keys.length) node.entries = entries;
  }
  return node;
}
