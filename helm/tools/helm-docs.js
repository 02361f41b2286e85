#!/usr/bin/env node
// Regenerates the chart's README.md values table and values.schema.json from
// the annotated values.yaml (`npm run helm:docs`).
//
// @bitnami/readme-generator-for-helm does the work: it checks that every value
// has a "## @param" line, rewrites the README's "## Parameters" section (the
// hand-written text around it stays) and writes the schema. What it cannot
// infer from a default, such as allowed words, patterns or integer types, is
// written in values.yaml as "## @schema KEY JSON" lines, which this script
// merges into the property KEY of the generated schema.
//
//   node helm/tools/helm-docs.js            rewrite helm/tally/README.md and values.schema.json
//   node helm/tools/helm-docs.js --out DIR  write both into DIR instead (the staleness test)
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { runReadmeGenerator } = require('@bitnami/readme-generator-for-helm');

const CHART = path.join(__dirname, '..', 'tally');

/** The "## @schema KEY JSON" lines of a values file, in order. */
function schemaAnnotations(valuesText) {
  const out = [];
  valuesText.split('\n').forEach((line, i) => {
    const m = /^\s*## @schema (\S+) (.+)$/.exec(line);
    if (!m) return;
    try {
      out.push({ key: m[1], extra: JSON.parse(m[2]), line: i + 1 });
    } catch (e) {
      throw new Error(`values.yaml:${i + 1}: @schema ${m[1]}: not JSON: ${e.message}`);
    }
  });
  return out;
}

/** Objects merge key by key; anything else (arrays too) replaces. */
function deepMerge(into, from) {
  for (const [k, v] of Object.entries(from)) {
    const cur = into[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)) deepMerge(cur, v);
    else into[k] = v;
  }
}

/** Adds the @schema annotations to a generated schema; a KEY it lacks is an error. */
function applyAnnotations(schema, annotations) {
  for (const { key, extra, line } of annotations) {
    let node = schema;
    for (const part of key.split('.')) {
      node = node.properties?.[part];
      if (!node) throw new Error(`values.yaml:${line}: @schema ${key}: the generated schema has no such property`);
    }
    deepMerge(node, extra);
  }
  // Helm validates with JSON Schema; say which draft the keywords are from.
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...schema };
}

function generate(outDir) {
  const values = path.join(CHART, 'values.yaml');
  const readme = path.join(outDir, 'README.md');
  const schemaFile = path.join(outDir, 'values.schema.json');
  if (path.resolve(outDir) !== path.resolve(CHART)) fs.copyFileSync(path.join(CHART, 'README.md'), readme);
  runReadmeGenerator({ values, readme, schema: schemaFile });
  const schema = JSON.parse(fs.readFileSync(schemaFile, 'utf8'));
  const annotated = applyAnnotations(schema, schemaAnnotations(fs.readFileSync(values, 'utf8')));
  fs.writeFileSync(schemaFile, JSON.stringify(annotated, null, 4) + '\n');
}

if (require.main === module) {
  const i = process.argv.indexOf('--out');
  if (i > 0 && !process.argv[i + 1]) throw new Error('--out needs a directory');
  generate(i > 0 ? process.argv[i + 1] : CHART);
}

module.exports = { generate, applyAnnotations, schemaAnnotations };
