/**
 * Policy files are UTF-8. Decoding is strict: a byte that is not UTF-8 (a
 * file saved as Latin-1, a binary pasted in) is refused at its line and
 * column, as any other invalid input, rather than replaced with U+FFFD and
 * exposed in a help text.
 */

export type Utf8Result = { text: string } | { invalid: { line: number; column: number; byte: number } };

// ignoreBOM keeps a byte-order mark in the text, as Buffer#toString did before: positions stay where the YAML parser puts them.
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function decodeUtf8(bytes: Uint8Array): Utf8Result {
  try {
    return { text: strict.decode(bytes) };
  } catch {
    const at = firstInvalid(bytes);
    // Line and column as yaml-positions counts them: 1-based, columns in UTF-16 code units.
    const before = strict.decode(bytes.subarray(0, at));
    const lineStart = before.lastIndexOf('\n') + 1;
    return { invalid: { line: before.split('\n').length, column: before.length - lineStart + 1, byte: bytes[at] } };
  }
}

/**
 * Offset of the first byte that does not start a well-formed sequence
 * (Unicode table 3-7: no overlong forms, surrogates or code points past
 * U+10FFFF); bytes.length when every sequence is well-formed.
 */
function firstInvalid(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return i;
    }
    i += need + 1;
  }
  return bytes.length;
}
