/**
 * Reads a policy file, or says why it will not: only a regular file (through
 * symlinks) of at most LIMITS.fileBytes is read. The checks come before any
 * read, on the opened file itself, so a FIFO cannot hang the reader (it is
 * opened non-blocking), a device like /dev/zero cannot feed it without end,
 * and a file swapped between a check and the read is not a way around them.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { LIMITS } from './limits';

/** The file's bytes, decoded later (utf8.ts: an invalid byte is a problem at its line and column, not a refusal to read). */
export type PolicyFileRead = { bytes: Buffer } | { refused: { expected: string; found: string; hint?: string } };

/** What a non-regular file is, for "found …". */
function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Reads `file`; refused when it is not a regular file or is larger than the cap. I/O errors are thrown. */
export async function readPolicyFile(file: string, maxBytes: number = LIMITS.fileBytes): Promise<PolicyFileRead> {
  const fh = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { refused: { expected: 'a regular file', found: kindOf(st), hint: 'give a regular file, or a symlink to one' } };
    const tooLarge = (n: number | string): PolicyFileRead => ({
      refused: { expected: `a policy file of at most ${maxBytes} bytes (tally's limit fileBytes)`, found: `${n} bytes`, hint: 'split the policies over several files' },
    });
    if (st.size > maxBytes) return tooLarge(st.size);
    // The file may grow after the stat: read at most one byte past the cap to find out.
    const buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
    let n = 0;
    for (;;) {
      if (n === buf.length) return tooLarge(`more than ${maxBytes}`);
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    return { bytes: buf.subarray(0, n) };
  } finally {
    await fh.close();
  }
}
