/**
 * Policy files are decoded strictly: the first byte that is not UTF-8 is
 * found, with its line and column as the YAML parser counts them.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { decodeUtf8 } from '../src/policy/utf8';

const bytes = (...parts: Array<string | number[]>): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

describe('decodeUtf8', () => {
  it('decodes UTF-8 as is, a byte-order mark and every plane included', () => {
    const text = '\uFEFFhelp: café — 𝄞 ok\n';
    assert.deepEqual(decodeUtf8(Buffer.from(text, 'utf8')), { text });
  });

  // [what, bytes, line, column, byte]
  const TABLE: Array<[string, Buffer, number, number, number]> = [
    ['a Latin-1 byte', bytes('a: caf', [0xe9], '\n'), 1, 7, 0xe9],
    ['a lone continuation byte', bytes('a: 1\nb: ', [0x80]), 2, 4, 0x80],
    ['an overlong form', bytes('x', [0xc0, 0xaf]), 1, 2, 0xc0],
    ['an overlong three-byte form', bytes('x', [0xe0, 0x80, 0xaf]), 1, 2, 0xe0],
    ['a surrogate', bytes('x', [0xed, 0xa0, 0x80]), 1, 2, 0xed],
    ['past U+10FFFF', bytes('x', [0xf4, 0x90, 0x80, 0x80]), 1, 2, 0xf4],
    ['a sequence cut short by the end', bytes('x', [0xe2, 0x80]), 1, 2, 0xe2],
    ['a sequence cut short by ASCII', bytes('x', [0xe2, 0x80], 'y'), 1, 2, 0xe2],
    // Columns count UTF-16 code units before it: é is 1, 𝄞 is 2.
    ['after other characters on its line', bytes('a\né𝄞', [0xff]), 2, 4, 0xff],
  ];
  for (const [what, input, line, column, byte] of TABLE) {
    it(`refuses ${what} at its line and column`, () => {
      assert.deepEqual(decodeUtf8(input), { invalid: { line, column, byte } });
    });
  }
});
