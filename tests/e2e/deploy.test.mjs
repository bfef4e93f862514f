// deploy/: the Grafana dashboard and the Prometheus alert rules name only metrics that a running
// server exports, so a renamed metric fails here instead of leaving an empty panel or an alert
// that can never fire.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { startServer } from './harness.mjs';

const deploy = (file) => readFileSync(new URL(`../../deploy/${file}`, import.meta.url), 'utf8');
const names = (text) => new Set(text.match(/\bzena_[a-z][a-z0-9_]*/g) ?? []);

// Every metric family in Prometheus text: `name value` or `name{labels} value`.
function exported(text) {
  const out = new Set();
  for (const line of text.split('\n')) {
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? /);
    if (m) out.add(m[1]);
  }
  return out;
}

test('Deploy.DashboardAndAlerts_NameOnlyExportedMetrics', async () => {
  const dashboard = JSON.parse(deploy('grafana/zena-realtime.json'));
  const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
  const used = new Map([
    ['grafana/zena-realtime.json', names(exprs.join('\n') + dashboard.templating.list.map((v) => v.definition).join('\n'))],
    ['prometheus/alerts.yml', names(deploy('prometheus/alerts.yml'))],
  ]);
  assert.ok(used.get('grafana/zena-realtime.json').size >= 25, 'the dashboard covers the metrics');
  assert.ok(used.get('prometheus/alerts.yml').size >= 8, 'the rules use the metrics');

  const server = await startServer({ env: {} });
  try {
    const metrics = exported(await (await fetch(server.url('/metrics'))).text());
    assert.ok(metrics.size >= 30, 'the server exports its metrics');
    for (const [file, set] of used) {
      const missing = [...set].filter((n) => !metrics.has(n));
      assert.deepEqual(missing, [], `${file} names metrics that /metrics lacks`);
    }
  } finally {
    await server.stop();
  }
});

test('Deploy.Dashboard_IsImportable', () => {
  const dashboard = JSON.parse(deploy('grafana/zena-realtime.json'));
  assert.equal(dashboard.uid, 'zena-realtime');
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of dashboard.panels) {
    assert.equal(p.datasource.uid, '${DS_PROMETHEUS}', `${p.title}: the data source is chosen at import`);
    assert.ok(p.targets.length > 0 && p.targets.every((t) => t.expr && t.refId), p.title);
  }
});
