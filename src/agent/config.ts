/** Everything the agent needs to run, validated and defaulted by src/cli/args.ts. */
import { ListenAddress } from '../cli/address';
import { LabelFilter } from '../labels/label-filter';
import type { PodLabels } from '../labels/pod-labels';
import type { RollupPlan } from '../cardinality/rollup-plan';
import type { PeerCidr } from '../peers/peer-cidrs';
import { LogLevel } from '../util/log';
import { OtlpConfig } from '../exporters/otlp/config';
import type { LoadedWebConfig } from '../exporters/web-config';
import type { HttpLimits } from '../exporters/connection-limits';

export interface AgentConfig {
  metricsServer: ListenAddress;
  /** --web.config.file, read and checked: TLS, basic auth and headers of the metrics server. */
  webConfig?: LoadedWebConfig;
  /** --web.max-connections, --web.read-header-timeout, --web.idle-timeout. */
  httpLimits: HttpLimits;
  /** --metrics-label-filter, compiled once. */
  labelFilter: LabelFilter;
  /** --metrics-pod-labels: the Kubernetes pod labels series carry, compiled once. */
  podLabels: PodLabels;
  /** Series per metric, rolled-up ones included (the flat overflow series aside). */
  seriesLimit: number;
  /** --metrics-rollup-order and --metrics-rollup-reserve under the filter: how label sets past the limit roll up. */
  rollup: RollupPlan;
  /** How long a removed cgroup's series and kernel entries outlive it, in ms. */
  seriesTtlMs: number;
  logLevel: LogLevel;
  /** Kubernetes: a kubeconfig file; else in-cluster config when KUBERNETES_SERVICE_HOST is set; else none. */
  kubeconfig?: string;
  /** This node's name, for fieldSelector spec.nodeName. */
  nodeName: string;
  /** The kernel's BTF; /sys/kernel/btf/vmlinux unless given. */
  kernelBtfPath?: string;
  /** max_entries of the in-kernel counter map. */
  counterMapCapacity: number;
  /** --bpf-pin-dir: where counters are pinned across restarts (docs/restart.md); off when undefined. */
  pinDir?: string;
  /** --bpf-pin-daemonset: the DaemonSet whose absence at stop means an uninstall (src/persist/uninstall-check.ts). */
  pinDaemonSet?: { namespace: string; name: string };
  /** Keep the kernel's BPF run-time statistics on while the agent runs. */
  bpfStats: boolean;
  cgroupCacheCapacity: number;
  binaryCacheCapacity: number;
  /** The user's policy files (--policy-dir), watched; the built-ins in policies/ always load. */
  policyDir?: string;
  /** Which built-in policies (policies/NAME.yaml) run. */
  builtinPolicies: string[];
  /** --metrics-peer-cidrs: the peer classes of tcp-peers beside loopback, node and unknown (src/peers). */
  peerCidrs: PeerCidr[];
  /** --metrics-peer-cidrs-file: where peerCidrs came from, and its text then; watched for new versions. */
  peerCidrsFile?: { path: string; text: string };
  /** OTLP push export; undefined when no endpoint is configured. */
  otlp?: OtlpConfig;
}
