import * as path from 'node:path';
import { PROJECT_ROOT } from '../../src/util/paths';

/** The test-only BPF object built from test/bpf/fixture.bpf.c. */
export const FIXTURE_OBJECT = path.join(PROJECT_ROOT, 'build', 'test-bpf', 'fixture.bpf.o');
