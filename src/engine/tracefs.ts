/**
 * Tracepoint event formats from tracefs: the fields of the record a classic
 * tracepoint program reads, with their offsets and sizes. A Tetragon-style
 * tracepoint arg `index: N` is the N-th field of this format, common fields
 * included.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface FormatField {
  /** The C declaration, e.g. `const char * filename` or `__data_loc char[] name`. */
  declaration: string;
  name: string;
  offset: number;
  size: number;
  signed: boolean;
}

const TRACEFS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

export function tracefsRoot(): string | undefined {
  return TRACEFS.find((d) => fs.existsSync(path.join(d, 'events')));
}

export class TracepointError extends Error {}

/** Parses a format file's field lines. */
export function parseFormat(text: string): FormatField[] {
  const fields: FormatField[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*field:(.+?);\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d+);/.exec(line);
    if (!m) continue;
    const declaration = m[1].trim();
    const name = /([A-Za-z_][A-Za-z0-9_]*)(\[[^\]]*\])?$/.exec(declaration)?.[1] ?? declaration;
    fields.push({ declaration, name, offset: Number(m[2]), size: Number(m[3]), signed: m[4] === '1' });
  }
  return fields;
}

export function readFormat(subsystem: string, event: string): FormatField[] {
  const root = tracefsRoot();
  if (!root) throw new TracepointError('tracefs is not mounted (at /sys/kernel/tracing or /sys/kernel/debug/tracing); mount it with: mount -t tracefs nodev /sys/kernel/tracing');
  const file = path.join(root, 'events', subsystem, event, 'format');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new TracepointError(`the kernel has no tracepoint ${subsystem}/${event} (no ${file})`);
  }
  return parseFormat(text);
}
