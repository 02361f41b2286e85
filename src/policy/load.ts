/**
 * Loading policy files: parse every YAML document, tell the formats apart by
 * apiVersion and kind, validate, and sum up each policy's state. A file that
 * fails never stops the others: every result says what went wrong where.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Policy, PolicyFileResult, PolicyKind, PolicyState, Problem } from './model';
import { Doc, Fields, Node } from './reader';
import { byPosition, didYouMean, fileProblem, oneOf } from './problems';
import { parseYamlStream, YamlDocument } from './yaml-positions';
import { PolicyBody, readMetricsPolicy } from './tally-policy';
import { readTracingPolicy } from './tetragon';
import { readPolicyFile } from './read-file';
import { decodeUtf8 } from './utf8';
import { LIMITS } from './limits';
import { refuseRepeatedNames } from './repeated-names';

export const TALLY_API_VERSION = 'tally.dev/v1alpha1';
export const TETRAGON_API_VERSION = 'cilium.io/v1alpha1';

const KINDS: Readonly<Record<string, readonly PolicyKind[]>> = {
  [TALLY_API_VERSION]: ['MetricsPolicy'],
  [TETRAGON_API_VERSION]: ['TracingPolicy', 'TracingPolicyNamespaced'],
};
const ALL_KINDS: readonly PolicyKind[] = Object.values(KINDS).flat();

/** Policy files are *.yaml and *.yml; dot files and editor leftovers (#x.yaml#, x.yaml~) are not. */
export function isPolicyFileName(name: string): boolean {
  return /\.ya?ml$/.test(name) && !name.startsWith('.') && !name.startsWith('#');
}

/** Validates `text` as the contents of `file` (the name problems carry). */
export function loadPolicyText(text: string, file: string): PolicyFileResult {
  const steps = validate(text, file);
  for (;;) {
    const s = steps.next();
    if (s.done) return s.value;
  }
}

/**
 * As loadPolicyBytes, for the agent: it yields to the event loop after each
 * document, so a file of 100 policies (30-140 ms to validate here) never
 * holds a scrape up for more than one document and the YAML parse.
 */
export async function loadPolicyBytesYielding(bytes: Uint8Array, file: string): Promise<PolicyFileResult> {
  const decoded = decodeUtf8(bytes);
  if (!('text' in decoded)) return loadPolicyBytes(bytes, file);
  const steps = validate(decoded.text, file);
  for (;;) {
    const s = steps.next();
    if (s.done) return s.value;
    await new Promise((r) => setImmediate(r));
  }
}

/** The validation of a file's text, one step per document. */
function* validate(text: string, file: string): Generator<void, PolicyFileResult> {
  const parsed = parseYamlStream(text);
  if (!parsed.ok) {
    return { file, state: 'error', problems: [fileProblem(file, 'valid YAML', parsed.reason, parsed.line, parsed.column)], policies: [] };
  }
  if (!parsed.documents.length) {
    const p = fileProblem(file, 'at least one policy document', 'none', 1, 1, 'the file is empty or holds only comments');
    return { file, state: 'error', problems: [p], policies: [] };
  }
  if (parsed.documents.length > LIMITS.policiesPerFile) return tooManyPolicies(file, parsed.documents);
  const policies: Policy[] = [];
  for (const d of parsed.documents) {
    policies.push(readDocument(file, d));
    yield;
  }
  refuseRepeatedNames(file, policies, parsed.documents);
  return { file, state: fileStateOf(policies.map((p) => p.state)), problems: policies.flatMap((p) => p.problems), policies };
}

/** A file past LIMITS.policiesPerFile, refused whole at the first document beyond the limit. */
function tooManyPolicies(file: string, documents: readonly YamlDocument[]): PolicyFileResult {
  const { line, column } = documents[LIMITS.policiesPerFile].positions.valueAt([]);
  const expected = `at most ${LIMITS.policiesPerFile} policy documents in one file (tally's limit policiesPerFile)`;
  const p = fileProblem(file, expected, `${documents.length}; document ${LIMITS.policiesPerFile + 1} starts here`, line, column, 'split the policies over several files');
  return { file, state: 'error', problems: [p], policies: [] };
}

/** Validates the bytes of `file`: UTF-8 text (else one problem at the first invalid byte), then as loadPolicyText. */
export function loadPolicyBytes(bytes: Uint8Array, file: string): PolicyFileResult {
  const decoded = decodeUtf8(bytes);
  if ('text' in decoded) return loadPolicyText(decoded.text, file);
  const { line, column, byte } = decoded.invalid;
  const found = `the byte 0x${byte.toString(16).toUpperCase().padStart(2, '0')}, which is not valid UTF-8 there`;
  return { file, state: 'error', problems: [fileProblem(file, 'UTF-8 text', found, line, column, 'save the file as UTF-8')], policies: [] };
}

/** A file's state from its policies': ok when all are, error when all are (or it has none), partial otherwise. */
export function fileStateOf(states: readonly PolicyState[]): PolicyState {
  if (states.length && states.every((s) => s === 'ok')) return 'ok';
  return states.every((s) => s === 'error') ? 'error' : 'partial';
}

/** A file that was not read (not a regular file, past the size cap, …): in error, saying why, at 1:1. */
export function refusedFile(file: string, why: { expected: string; found: string; hint?: string }): PolicyFileResult {
  return { file, state: 'error', problems: [fileProblem(file, why.expected, why.found, 1, 1, why.hint)], policies: [] };
}

/** Reads and validates one file; an unreadable or refused file (see read-file.ts) is a result in error, not an exception. */
export async function loadPolicyFile(file: string): Promise<PolicyFileResult> {
  let bytes: Buffer;
  try {
    const read = await readPolicyFile(file);
    if ('refused' in read) return refusedFile(file, read.refused);
    bytes = read.bytes;
  } catch (e) {
    // "ENOENT: no such file or directory, open 'x'" → "ENOENT (no such file or directory)".
    const err = e as NodeJS.ErrnoException;
    const text = err.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '');
    return { file, state: 'error', problems: [fileProblem(file, 'a readable policy file', err.code ? `${err.code} (${text})` : text)], policies: [] };
  }
  return loadPolicyBytes(bytes, file);
}

/**
 * Every policy file directly in `dir` (see isPolicyFileName), by name. An
 * entry with a policy file's name that cannot be read as one (a dangling
 * symlink, a FIFO, a directory) is a result in error saying so, not skipped.
 */
export async function loadPolicyDir(dir: string): Promise<PolicyFileResult[]> {
  const names = (await fs.readdir(dir)).filter(isPolicyFileName).sort();
  return Promise.all(names.map((n) => loadPolicyFile(path.join(dir, n))));
}

function readDocument(file: string, yaml: YamlDocument): Policy {
  const doc = new Doc(file, yaml.positions);
  const root = new Node(doc, [], yaml.value).mapping(['apiVersion', 'kind', 'metadata', 'spec'], 'a policy: a mapping with apiVersion, kind, metadata and spec');
  const kind = root && readKind(root);
  let body: PolicyBody = { hooks: [] };
  if (root && kind) body = kind === 'MetricsPolicy' ? readMetricsPolicy(root) : readTracingPolicy(root, kind);
  const problems = doc.problems.sort(byPosition);
  const has = (s: Problem['severity']): boolean => problems.some((p) => p.severity === s);
  const state: PolicyState = has('error') || !body.hooks.length ? 'error' : has('unsupported') ? 'partial' : 'ok';
  const policy: Policy = { file, document: yaml.index, state, problems, hooks: state === 'error' ? [] : body.hooks };
  if (kind) policy.kind = kind;
  if (body.name !== undefined) policy.name = body.name;
  if (body.namespace !== undefined) policy.namespace = body.namespace;
  return policy;
}

/**
 * apiVersion and kind must agree. When apiVersion is unknown but kind is
 * known, reading goes on by kind so the rest of the document is checked too.
 */
function readKind(root: Fields): PolicyKind | undefined {
  const apiNode = root.require('apiVersion', oneOf(Object.keys(KINDS)));
  const api = apiNode?.choice(Object.keys(KINDS));
  const kindNode = root.require('kind', oneOf(ALL_KINDS));
  const kindText = kindNode?.string();
  if (!kindNode || kindText === undefined) return undefined;
  if (api === undefined) {
    return (ALL_KINDS as readonly string[]).includes(kindText) ? (kindText as PolicyKind) : kindNode.choice(ALL_KINDS);
  }
  const kinds = KINDS[api];
  if ((kinds as readonly string[]).includes(kindText)) return kindText as PolicyKind;
  const other = Object.keys(KINDS).find((a) => (KINDS[a] as readonly string[]).includes(kindText));
  const hint = other ? `${kindText} has apiVersion ${other}` : undefined;
  kindNode.error(`${oneOf(kinds)} (the ${kinds.length > 1 ? 'kinds' : 'kind'} of apiVersion ${api})`, hint ?? kindHint(kindText, kinds));
  return undefined;
}

/** Tetragon's kind is sometimes misremembered as TetragonPolicy, too far from TracingPolicy for a typo. */
function kindHint(kind: string, kinds: readonly string[]): string | undefined {
  return kind === 'TetragonPolicy' && kinds.includes('TracingPolicy') ? 'did you mean "TracingPolicy"?' : didYouMean(kind, kinds);
}
