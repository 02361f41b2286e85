/** --web.config.file: the exporter-toolkit's web configuration (TLS, basic auth, headers), reloaded on change. */
export { parseWebConfig, readWebConfig, WebConfig, WebConfigError, CLIENT_AUTH_TYPES, ClientAuthType } from './config';
export { loadTls, refusal, TlsSettings } from './tls';
export { BasicAuth, parseBasicAuth } from './basic-auth';
export { describeWebConfig, loadWebConfig, LoadedWebConfig, WebConfigLog, WebConfigSource } from './source';
export { registerWebConfigMetrics } from './metrics';
