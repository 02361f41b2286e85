/** Syscall numbers of this architecture (build/syscalls.json, from the kernel headers). */
import * as fs from 'node:fs';
import { SYSCALLS_PATH } from '../util/paths';

export function loadSyscalls(file = SYSCALLS_PATH): Readonly<Record<string, number>> {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, number>;
  } catch (e) {
    throw new Error(`reading syscall numbers from ${file}: ${(e as Error).message}; run the build (npm run build)`);
  }
}
