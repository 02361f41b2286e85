/** The web config's reloads, for tally_web_config_* (docs/metrics.md). */
import { Registry } from 'prom-client';
import { WEB_CONFIG_LAST_RELOAD_SUCCESSFUL, WEB_CONFIG_RELOADS } from '../../metrics/catalog';
import { defineMetric } from '../../metrics/define';
import { WebConfigSource } from './source';

export function registerWebConfigMetrics(registry: Registry, web: WebConfigSource): void {
  defineMetric(registry, WEB_CONFIG_RELOADS, () => [
    { labels: { result: 'success' }, value: web.reloads.success },
    { labels: { result: 'failure' }, value: web.reloads.failure },
  ]);
  defineMetric(registry, WEB_CONFIG_LAST_RELOAD_SUCCESSFUL, () => [{ labels: {}, value: web.lastReloadSuccessful ? 1 : 0 }]);
}
