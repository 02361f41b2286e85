/**
 * The attach fallback on the real kernel: a refused candidate is recorded
 * with the kernel's reason and the next one is used; a hook with nothing left
 * fails alone while the others run.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { attachTypeOf, explain, failedProgram, loadObject } from '../src/bpf/loader';
import { FIXTURE_OBJECT } from './helpers/fixture';

describe('loadObject', () => {
  it('falls back past load and attach refusals, and isolates a hook that cannot attach', () => {
    const loaded = loadObject({
      objectPath: FIXTURE_OBJECT,
      hooks: [
        { hook: 'exec-a', candidates: ['bad_btf', 'exec_btf'] },
        { hook: 'exec-b', candidates: ['tp_missing', 'exec_raw'] },
        { hook: 'nowhere', candidates: ['btf_missing'] },
      ],
    });
    try {
      const [a, b, none] = loaded.hooks;
      assert.equal(a.program, 'exec_btf');
      assert.equal(a.attachType, 'tp_btf');
      assert.equal(a.refused.length, 1);
      assert.deepEqual({ p: a.refused[0].program, stage: a.refused[0].stage, code: a.refused[0].code }, { p: 'bad_btf', stage: 'load', code: 'EACCES' });
      assert.match(a.refused[0].reason, /invalid access to map value/);

      assert.equal(b.program, 'exec_raw');
      assert.equal(b.attachType, 'raw_tp');
      assert.deepEqual({ p: b.refused[0].program, stage: b.refused[0].stage, code: b.refused[0].code }, { p: 'tp_missing', stage: 'attach', code: 'ENOENT' });

      assert.equal(none.program, undefined);
      assert.equal(none.refused.length, 1);
      assert.equal(none.refused[0].stage, 'load');
      assert.match(none.refused[0].reason, /tally_fixture_no_such_event/);
    } finally {
      loaded.object.close();
    }
  });

  it('takes the most preferred attach type the kernel accepts, recording each refusal before it', () => {
    // Kernel-independent: whichever candidate wins, everything before it was
    // refused with an errno and a reason, and nothing after it was tried.
    // (On the development kernel fentry is refused at load with EPERM and
    // kprobe at attach, so raw_tp wins.)
    const candidates = ['probe_fentry', 'probe_kprobe', 'probe_raw_tp'];
    const loaded = loadObject({ objectPath: FIXTURE_OBJECT, hooks: [{ hook: 'probe', candidates }] });
    try {
      const [h] = loaded.hooks;
      assert.ok(h.program, 'raw_tp is always available on a kernel with BTF');
      const won = candidates.indexOf(h.program!);
      assert.deepEqual(h.refused.map((r) => r.program), candidates.slice(0, won));
      assert.deepEqual(h.refused.map((r) => r.attachType), ['fentry', 'kprobe'].slice(0, won));
      for (const r of h.refused) {
        assert.ok(r.errno > 0, `${r.program} refused with errno ${r.errno}`);
        assert.ok(r.reason.length > 0, `${r.program} refused without a reason`);
      }
      process.stdout.write(`# this kernel: probe attached via ${h.attachType}; refused: ${h.refused.map((r) => `${r.attachType} at ${r.stage} (${r.code}: ${r.reason})`).join('; ') || 'none'}\n`);
    } finally {
      loaded.object.close();
    }
  });

  it('rejects a hook naming a program the object lacks', () => {
    assert.throws(() => loadObject({ objectPath: FIXTURE_OBJECT, hooks: [{ hook: 'x', candidates: ['nope'] }] }), /hook x: no program named 'nope'/);
  });
});

describe('loader helpers', () => {
  it('maps sections to attach types', () => {
    const table: Array<[string, string]> = [
      ['tp_btf/sock_send_length', 'tp_btf'],
      ['raw_tp/sock_send_length', 'raw_tp'],
      ['raw_tracepoint/x', 'raw_tp'],
      ['tracepoint/sock/sock_send_length', 'tracepoint'],
      ['tp/sock/x', 'tracepoint'],
      ['fentry/tcp_sendmsg', 'fentry'],
      ['kprobe/tcp_sendmsg', 'kprobe'],
      ['xdp', 'unknown'],
    ];
    for (const [section, want] of table) assert.equal(attachTypeOf(section), want, section);
  });

  it('finds the refused program and the verifier conclusion in a libbpf log', () => {
    const log = [
      "libbpf: prog 'p1': BPF program load failed: Permission denied",
      "libbpf: prog 'p1': -- BEGIN PROG LOAD LOG --",
      '0: R1=ctx() R10=fp0',
      'invalid access to map value, value_size=8 off=128 size=8',
      'processed 7 insns',
      '-- END PROG LOAD LOG --',
      "libbpf: prog 'p1': failed to load: -13",
    ];
    assert.equal(failedProgram(log), 'p1');
    assert.match(explain(log, 'p1'), /invalid access to map value/);
    assert.equal(failedProgram(['libbpf: something else']), undefined);
  });
});
