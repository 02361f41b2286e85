/**
 * The template renderer the chart tests use instead of helm: each case pins
 * one piece of Go template or Helm behaviour it must reproduce, or one thing
 * it must refuse rather than guess.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { Chart, goFloat, mergeValues, renderChart, TemplateError } from './helpers/helm-template';

function render(src: string, values: Record<string, unknown> = {}, extra: { helpers?: string; files?: Record<string, string> } = {}): string {
  const templates = new Map([['t/templates/x.yaml', src]]);
  if (extra.helpers) templates.set('t/templates/_helpers.tpl', extra.helpers);
  const chart: Chart = { dir: '', meta: { name: 't', version: '1.2.3', appVersion: '4.5.6' }, values: {}, templates, files: new Map() };
  return renderChart(chart, { values, releaseName: 'rel', namespace: 'ns', extraFiles: extra.files }).get('t/templates/x.yaml')!;
}

const refuses = (src: string, re: RegExp, values: Record<string, unknown> = {}): void =>
  assert.throws(() => render(src, values), (e: unknown) => e instanceof TemplateError && re.test(e.message), src);

describe('helm template renderer', () => {
  it('prints float64 values as Go does', () => {
    const cases: Array<[number, string]> = [
      [2000, '2000'],
      [16384, '16384'],
      [123456, '123456'],
      [1000000, '1e+06'],
      [1234567, '1.234567e+06'],
      [0.5, '0.5'],
      [0.0001, '0.0001'],
      [0.00001, '1e-05'],
      [-2.5, '-2.5'],
      [0, '0'],
    ];
    for (const [x, want] of cases) assert.equal(goFloat(x), want, String(x));
    assert.equal(render('{{ .Values.n }} {{ .Values.n | int }} {{ .Values.n | int | quote }}', { n: 1000000 }), '1e+06 1000000 "1000000"');
  });

  it('trims white space at {{- and -}}, and drops comments', () => {
    assert.equal(render('a \n {{- "b" -}} \n c'), 'abc');
    assert.equal(render('a\n{{- /* note */ -}}\nb'), 'ab');
    assert.equal(render('a {{/* note */}} b'), 'a  b');
    assert.equal(render('{{ 3 }}-{{ "x" }}'), '3-x');
  });

  it('evaluates if / else if / else, with and range as Go does', () => {
    const src = '{{ if .Values.a }}A{{ else if .Values.b }}B{{ else }}C{{ end }}';
    assert.equal(render(src, { a: 1 }), 'A');
    assert.equal(render(src, { b: 'x' }), 'B');
    assert.equal(render(src, { a: 0, b: [], c: {} }), 'C');
    assert.equal(render('{{ with .Values.m }}{{ .k }}{{ else }}none{{ end }}', { m: { k: 'v' } }), 'v');
    assert.equal(render('{{ with .Values.m }}{{ .k }}{{ else }}none{{ end }}', { m: {} }), 'none');
    assert.equal(render('{{ range $k, $v := .Values.m }}{{ $k }}={{ $v }};{{ end }}', { m: { b: 2, a: 1, c: 'x' } }), 'a=1;b=2;c=x;');
    assert.equal(render('{{ range .Values.l }}[{{ . }}]{{ else }}empty{{ end }}', { l: ['x', 'y'] }), '[x][y]');
    assert.equal(render('{{ range $i, $v := .Values.l }}{{ $i }}{{ $v }}{{ end }}', { l: ['x', 'y'] }), '0x1y');
    assert.equal(render('{{ range .Values.l }}x{{ else }}empty{{ end }}', { l: [] }), 'empty');
  });

  it('scopes variables to their block, and = assigns to an outer one', () => {
    assert.equal(render('{{ $x := "a" }}{{ if true }}{{ $x = "b" }}{{ end }}{{ $x }}'), 'b');
    refuses('{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}', /undefined variable \$y/);
    assert.equal(render('{{ range .Values.l }}{{ $.Release.Name }}-{{ . }} {{ end }}', { l: ['a'] }), 'rel-a ');
  });

  it('prints a missing key as nothing, and fails on a field of nothing', () => {
    assert.equal(render('[{{ .Values.missing }}]'), '[]');
    refuses('{{ .Values.missing.deeper }}', /nil pointer evaluating interface \{\}\.deeper/);
    refuses('{{ .Release.Nope }}', /can't evaluate field Nope in type Release/);
    refuses('{{ .Capabilities.KubeVersion }}', /can't evaluate field Capabilities/);
  });

  it('short-circuits and/or, returning the deciding value', () => {
    assert.equal(render('{{ if and .Values.a .Values.a.b }}yes{{ else }}no{{ end }}'), 'no');
    assert.equal(render('{{ or .Values.x "fallback" }}'), 'fallback');
    assert.equal(render('{{ and 1 "" 3 }}|{{ or 0 "" }}'), '|');
  });

  it('has the sprig and Helm functions the chart uses, with their argument order', () => {
    assert.equal(render('{{ include "n" .Values.m }}', { m: { k: 'v' } }, { helpers: '{{- define "n" -}}{{ .k }}/{{ $.k }}{{- end -}}' }), 'v/v');
    assert.equal(render('{{ default "d" .Values.x }} {{ default "d" "given" }}'), 'd given');
    assert.equal(render('{{ printf "%s-%s" "a" "b" | trunc 3 | trimSuffix "-" }}'), 'a-b');
    assert.equal(render('{{ "abc-" | trimSuffix "-" | upper | replace "B" "_" }}'), 'A_C');
    assert.equal(render('{{ contains "ll" "tally" }} {{ contains "tally" "ll" }}'), 'true false');
    assert.equal(render('{{ join "," .Values.l }}', { l: ['a', 'b'] }), 'a,b');
    assert.equal(render('{{ has "B" .Values.l }} {{ has "Z" .Values.l }}', { l: ['A', 'B'] }), 'true false');
    assert.equal(render('{{ base "files/dashboards/x.json" }}'), 'x.json');
    assert.equal(render('{{ quote "a\\"b" 1 }}'), '"a\\"b" "1"');
    assert.equal(render('{{ print "a" "b" }}|{{ print 1 2 }}'), 'ab|1 2');
    assert.equal(render('{{ "x" | sha256sum }}'), '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881');
    assert.equal(render('{{ not .Values.x }} {{ eq "a" "b" "a" }} {{ ne 1 2 }}'), 'true true true');
    assert.equal(render('{{ toYaml (omit .Values.m "b" "z") }}|{{ .Values.m.b }}', { m: { a: 1, b: 2, c: 3 } }), 'a: 1\nc: 3|2');
    refuses('{{ omit "x" "a" }}', /omit: wants a map first/);
  });

  it('writes YAML with sorted keys, indented as asked', () => {
    assert.equal(render('x:{{ toYaml .Values.m | nindent 2 }}', { m: { b: [1, 'two'], a: { c: true } } }), 'x:\n  a:\n    c: true\n  b:\n  - 1\n  - two');
    assert.equal(render('{{ toYaml .Values.m }}', { m: {} }), '{}');
    assert.equal(render('{{ "a\\nb" | indent 2 }}'), '  a\n  b');
    assert.equal(render('{{ range $k, $_ := "b: 1\\na: 2" | fromYaml }}{{ $k }}{{ end }}'), 'ab');
  });

  it('reads .Files with Get and Glob', () => {
    const files = { 'files/a.json': 'A', 'files/b.json': 'B', 'files/sub/c.json': 'C', 'files/d.txt': 'D' };
    assert.equal(render('{{ range $p, $_ := .Files.Glob "files/*.json" }}{{ $p }}={{ $.Files.Get $p }};{{ end }}', {}, { files }), 'files/a.json=A;files/b.json=B;');
    assert.equal(render('{{ if .Files.Glob "files/none/*.json" }}some{{ else }}none{{ end }}', {}, { files }), 'none');
    assert.equal(render('[{{ .Files.Get "files/missing" }}]', {}, { files }), '[]');
  });

  it('refuses what it does not implement, instead of rendering it wrongly', () => {
    refuses('{{ tpl "x" . }}', /function "tpl" is not supported/);
    refuses('{{ template "x" . }}', /\{\{template\}\} is not supported/);
    refuses('{{ block "x" . }}{{ end }}', /\{\{block\}\} is not supported/);
    refuses('{{ .Values.m }}', /printing a map is not supported/, { m: { a: 1 } });
    refuses('{{ printf "%d" .Values.n }}', /%d of float64 2000 is not supported/, { n: 2000 });
    refuses('{{ .Values.s "arg" }}', /can't give arguments/, { s: 'x' });
    refuses('{{ if true }}x', /without \{\{end\}\}/);
    refuses('{{ end }}', /unexpected \{\{end\}\}/);
    refuses('{{ .Files.Glob "files/[ab].json" }}', /not supported/);
    refuses('{{ eq "2000" .Values.n }}', /cannot compare/, { n: 2000 });
  });

  it('merges values as helm does: maps deeply, lists replaced, null deletes', () => {
    assert.deepEqual(mergeValues({ a: { b: 1, c: 2 }, l: [1, 2], d: 'x' }, { a: { c: 3 }, l: [9], d: null }), { a: { b: 1, c: 3 }, l: [9] });
  });
});
