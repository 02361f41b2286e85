/**
 * The policy format layer: parses and validates policy files (tally's
 * MetricsPolicy and Tetragon's TracingPolicy) into the model of model.ts.
 */
export * from './model';
export { LIMITS } from './limits';
export { loadPolicyText, loadPolicyBytes, loadPolicyBytesYielding, loadPolicyFile, loadPolicyDir, refusedFile, isPolicyFileName, TALLY_API_VERSION, TETRAGON_API_VERSION } from './load';
export { formatProblem } from './problems';
export { PolicyDirectoryWatcher } from './directory-watcher';
export type { PolicyDirEvent, PolicyDirectoryWatcherOptions, SkipReason } from './directory-watcher';
