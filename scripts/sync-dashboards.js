#!/usr/bin/env node
// Copies the dashboards and alert rules into the Helm chart, which can only
// read files inside its own directory: dashboards/*.json to
// helm/tally/files/dashboards/ (removing JSON there that has no source) and
// dashboards/alerts.yaml to helm/tally/files/alerts.yaml. dashboards/ is the
// source; test/dashboards.test.ts fails while the copies differ.
// Run: npm run dashboards:sync
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const src = path.join(root, 'dashboards');
const chartFiles = path.join(root, 'helm', 'tally', 'files');
const dst = path.join(chartFiles, 'dashboards');

fs.mkdirSync(dst, { recursive: true });
const wanted = new Set(fs.readdirSync(src).filter((f) => f.endsWith('.json')));
for (const f of fs.readdirSync(dst)) {
  if (f.endsWith('.json') && !wanted.has(f)) {
    fs.rmSync(path.join(dst, f));
    console.log(`removed helm/tally/files/dashboards/${f}`);
  }
}
const copy = (from, to, name) => {
  const data = fs.readFileSync(from);
  if (fs.existsSync(to) && fs.readFileSync(to).equals(data)) return;
  fs.writeFileSync(to, data);
  console.log(`copied ${name}`);
};
for (const f of [...wanted].sort()) copy(path.join(src, f), path.join(dst, f), `dashboards/${f}`);
copy(path.join(src, 'alerts.yaml'), path.join(chartFiles, 'alerts.yaml'), 'dashboards/alerts.yaml');
