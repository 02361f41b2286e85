/** Writes docs/metrics.md (npm run docs). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderMetricsDoc } from './metrics-doc';
import { PROJECT_ROOT } from '../util/paths';

void renderMetricsDoc().then((text) => {
  const out = path.join(PROJECT_ROOT, 'docs', 'metrics.md');
  fs.writeFileSync(out, text);
  process.stdout.write(`wrote ${out}\n`);
});
