/**
 * --metrics-peer-cidrs-file: parsing with FILE:LINE errors, what is refused
 * before reading, and the watch that applies each new valid version once and
 * refuses each bad one once. No kernel: the table write is the apply() hook,
 * which tcp-peers-cidrs-file.test.ts drives against real BPF.
 */
import { after, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parsePeerCidrsText, PeerCidr } from '../src/peers/peer-cidrs';
import { MAX_PEER_CIDRS_FILE_BYTES, PeerCidrsFileWatch, readPeerCidrsFile } from '../src/peers/peer-cidrs-file';
import { formatCidr } from '../src/policy/ip';
import { parseFlags } from '../src/cli/args';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-peer-cidrs-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const show = (cidrs: PeerCidr[]): string => cidrs.map((c) => `${c.name}=${formatCidr(c.cidr)}`).join(',');

describe('the peer classes file', () => {
  const good: Array<[text: string, want: string]> = [
    ['', ''],
    ['# nothing yet\n\n', ''],
    ['vpc=10.0.0.0/8\n', 'vpc=10.0.0.0/8'],
    ['vpc=10.0.0.0/8, partner=203.0.113.0/24   # two on a line\ninternet=0.0.0.0/0\ninternet=::/0\n', 'vpc=10.0.0.0/8,partner=203.0.113.0/24,internet=0.0.0.0/0,internet=::/0'],
    ['\r\nvpc=10.0.0.0/8\r\n', 'vpc=10.0.0.0/8'],
  ];
  for (const [text, want] of good) {
    it(`reads ${JSON.stringify(text)}`, () => assert.equal(show(parsePeerCidrsText(text, 'f')), want));
  }

  const bad: Array<[text: string, error: RegExp]> = [
    ['vpc=10.0.0.0/8\nvpc 10.1.0.0/16\n', /f:2: "vpc 10.1.0.0\/16" is not NAME=CIDR/],
    ['vpc=10.0.0.0/8\n\n# c\nnode=192.168.0.0/16\n', /f:4: "node=192.168.0.0\/16" uses the class name "node", which tally gives itself/],
    ['a=10.0.0.0/8\nb=10.0.0.0/8\n', /f:2: "b=10.0.0.0\/8" gives 10.0.0.0\/8 to "b", but it is "a" already/],
    ['vpc=10.0.0.1/8\n', /f:1: "vpc=10.0.0.1\/8" has host bits set; write the network, 10.0.0.0\/8/],
    ['vpc=10.0.0.0/8,\n', /f:1: "" is empty/],
  ];
  for (const [text, error] of bad) {
    it(`refuses ${JSON.stringify(text)} at its line`, () => assert.throws(() => parsePeerCidrsText(text, 'f'), error));
  }

  it('refuses a FIFO, a directory, a missing file, invalid UTF-8 and a file over the size cap before parsing', () => {
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    assert.throws(() => readPeerCidrsFile(fifo), /fifo: not a regular file/); // would block forever if read
    assert.throws(() => readPeerCidrsFile(dir), /not a regular file/);
    assert.throws(() => readPeerCidrsFile(path.join(dir, 'none')), /none: ENOENT; give a readable file/);
    const utf = path.join(dir, 'utf');
    fs.writeFileSync(utf, Buffer.concat([Buffer.from('vpc=10.0.0.0/8\n# caf'), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]));
    assert.throws(() => readPeerCidrsFile(utf), /utf:2: invalid UTF-8/);
    const big = path.join(dir, 'big');
    fs.writeFileSync(big, Buffer.alloc(MAX_PEER_CIDRS_FILE_BYTES + 1, 0x23));
    assert.throws(() => readPeerCidrsFile(big), new RegExp(`${MAX_PEER_CIDRS_FILE_BYTES + 1} bytes, at most ${MAX_PEER_CIDRS_FILE_BYTES}`));
  });

  it('comes from the command line as config, and not together with --metrics-peer-cidrs', () => {
    const file = path.join(dir, 'flag');
    fs.writeFileSync(file, 'vpc=10.0.0.0/8\n');
    const p = parseFlags(['--metrics-peer-cidrs-file', file]);
    assert.equal(p.kind, 'run');
    if (p.kind !== 'run') return;
    assert.equal(show(p.config.peerCidrs), 'vpc=10.0.0.0/8');
    assert.deepEqual(p.config.peerCidrsFile, { path: file, text: 'vpc=10.0.0.0/8\n' });
    assert.throws(() => parseFlags(['--metrics-peer-cidrs-file', file, '--metrics-peer-cidrs', 'a=10.0.0.0/8']), /both give the peer classes; keep one/);
    fs.writeFileSync(file, 'vpc=10.0.0.0/33\n');
    assert.throws(() => parseFlags(['--metrics-peer-cidrs-file', file]), /flag:1: "vpc=10.0.0.0\/33"/);
  });
});

describe('watching the peer classes file', () => {
  /** A ConfigMap volume: the key is a link through ..data, a link to a versioned directory swapped by rename. */
  class ConfigMapDir {
    readonly root = fs.mkdtempSync(path.join(dir, 'cm-'));
    readonly file = path.join(this.root, 'peer-cidrs');
    private version = 0;
    constructor(text: string) {
      this.write(text);
      fs.symlinkSync('..data/peer-cidrs', this.file);
    }
    write(text: string): void {
      const v = `..v${++this.version}`;
      fs.mkdirSync(path.join(this.root, v));
      fs.writeFileSync(path.join(this.root, v, 'peer-cidrs'), text);
      fs.symlinkSync(v, path.join(this.root, '..data_tmp'));
      fs.renameSync(path.join(this.root, '..data_tmp'), path.join(this.root, '..data'));
    }
  }
  const until = async (cond: () => boolean, what: string): Promise<void> => {
    for (const deadline = Date.now() + 5000; !cond(); await new Promise((r) => setTimeout(r, 20))) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    }
  };

  it('applies each new valid version once, refuses each invalid one once, and keeps going', async () => {
    const cm = new ConfigMapDir('vpc=10.0.0.0/8\n');
    const applied: string[] = [];
    const refused: string[] = [];
    const w = new PeerCidrsFileWatch(cm.file, readPeerCidrsFile(cm.file).text, { apply: (c) => applied.push(show(c)), refuse: (r) => refused.push(r) });
    w.start();
    try {
      cm.write('vpc=10.0.0.0/8\npartner=203.0.113.0/24\n');
      await until(() => applied.length === 1, 'the second version');
      assert.deepEqual(applied, ['vpc=10.0.0.0/8,partner=203.0.113.0/24']);
      cm.write('vpc=10.0.0.0/8\npartner=203.0.113.0/33\n');
      await until(() => refused.length === 1, 'the refusal');
      assert.match(refused[0], /peer-cidrs:2: "partner=203.0.113.0\/33"/);
      w.check();
      w.check(); // the same bad version again: no news
      assert.equal(refused.length, 1);
      cm.write('internet=0.0.0.0/0\n');
      await until(() => applied.length === 2, 'the fixed version');
      assert.deepEqual(applied[1], 'internet=0.0.0.0/0');
      assert.equal(refused.length, 1);
    } finally {
      w.stop();
    }
  });

  it('counts a table that cannot take a version as refused', async () => {
    const cm = new ConfigMapDir('vpc=10.0.0.0/8\n');
    const refused: string[] = [];
    const w = new PeerCidrsFileWatch(cm.file, readPeerCidrsFile(cm.file).text, {
      apply: () => {
        throw new Error('the peer table holds at most 16384 entries');
      },
      refuse: (r) => refused.push(r),
    });
    w.start();
    try {
      cm.write('internet=0.0.0.0/0\n');
      await until(() => refused.length === 1, 'the refusal');
      assert.match(refused[0], /at most 16384 entries/);
    } finally {
      w.stop();
    }
  });

  it('applies a plain file rewritten in place, not swapped in', async () => {
    const file = path.join(dir, 'polled');
    fs.writeFileSync(file, 'vpc=10.0.0.0/8\n');
    const applied: string[] = [];
    // fs.watch may see this write too; either way the version is applied once (a 50 ms poll here).
    const w = new PeerCidrsFileWatch(file, 'vpc=10.0.0.0/8\n', { apply: (c) => applied.push(show(c)), refuse: () => undefined }, 50);
    w.start();
    try {
      fs.writeFileSync(file, 'vpc=172.16.0.0/12\n');
      await until(() => applied.length === 1, 'the change');
      assert.deepEqual(applied, ['vpc=172.16.0.0/12']);
    } finally {
      w.stop();
    }
  });
});
