/**
 * BENCHMARKS.md's generated blocks: each bench owns the text between
 * `<!-- NAME:begin -->` and `<!-- NAME:end -->`, and replaces it on --write.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../src/util/paths';

/** Replaces block `name` with `text`, or with what `text` makes of the block as it stands. */
export function writeBenchmarksBlock(name: string, text: string | ((old: string) => string)): void {
  const file = path.join(PROJECT_ROOT, 'BENCHMARKS.md');
  const md = fs.readFileSync(file, 'utf8');
  const re = new RegExp(`(<!-- ${name}:begin -->\\n)([\\s\\S]*?)\\n(<!-- ${name}:end -->)`);
  const m = re.exec(md);
  if (!m) throw new Error(`BENCHMARKS.md lacks the ${name} markers`);
  const block = typeof text === 'string' ? text : text(m[2]);
  fs.writeFileSync(file, md.slice(0, m.index) + `${m[1]}${block}\n${m[3]}` + md.slice(m.index + m[0].length));
}
