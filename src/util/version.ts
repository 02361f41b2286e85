import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT } from './paths';

/** tally's version, from package.json. */
export const VERSION: string = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')).version;
