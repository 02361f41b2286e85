/**
 * Command-line flags: parsed strictly, validated, defaulted. Every mistake
 * becomes a UsageError whose message says what was wrong and what is valid.
 */
import { parseArgs } from 'node:util';
import * as os from 'node:os';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentConfig } from '../agent/config';
import { parseListenAddress } from './address';
import { DEFAULT_LABEL_FILTER, FILTER_LABELS, LabelFilter } from '../labels/label-filter';
import { PodLabels } from '../labels/pod-labels';
import { LOG_LEVELS, LogLevel } from '../util/log';
import { parseDuration } from '../util/duration';
import { DEFAULT_OTLP_INTERVAL, OTLP_PROTOCOLS, resolveOtlpConfig } from '../exporters/otlp/config';
import { loadWebConfig } from '../exporters/web-config';
import { DEFAULT_ROLLUP_ORDER, DEFAULT_ROLLUP_RESERVE_PERCENT, parseRollupOrder, RollupPlan } from '../cardinality/rollup-plan';
import { DEFAULT_HTTP_LIMITS } from '../exporters/connection-limits';
import { parsePeerCidrs, PEER_CIDRS_FLAG } from '../peers/peer-cidrs';
import { PEER_CIDRS_FILE_FLAG, readPeerCidrsFile } from '../peers/peer-cidrs-file';

/** The policies in policies/, by file name without .yaml. */
export const BUILTIN_POLICIES = ['tcp-bytes', 'tcp-retransmits', 'file-writes', 'process', 'tcp-peers', 'udp-peers'] as const;
/** The built-ins by peer: each adds a series per peer class, so they are asked for. */
export const PEER_POLICIES: readonly string[] = ['tcp-peers', 'udp-peers'];
/** Those that run unless --builtin-policies says otherwise. */
export const DEFAULT_BUILTIN_POLICIES: readonly string[] = BUILTIN_POLICIES.filter((p) => !PEER_POLICIES.includes(p));

export class UsageError extends Error {}

export const HELP = `Usage: tally [flags]
       tally policy check [--load] FILE|DIR...
       tally top [--server ADDR] [--by LABEL] [--metric LIST]   (tally top --help)
       tally cardinality [--top N] [--server ADDR]
       tally state clear [--bpf-pin-dir DIR]

eBPF metrics agent: counts kernel events in the kernel and serves them to Prometheus.

Flags:
  --metrics-server ADDR          where to serve /metrics, /healthz, /readyz (default ":2112":
                                 every interface of the host; 127.0.0.1:2112 for this host only)
  --web.config.file FILE         TLS, client certificates, basic auth and headers for that server,
                                 in the Prometheus exporter-toolkit's format (as node_exporter's);
                                 re-read when it changes (see docs/web-config.md)
  --web.max-connections N        connections that server holds at once; more are closed unanswered
                                 (default 64; fewer when the fd limit is low, see docs/limits.md)
  --web.read-header-timeout DURATION
                                 how long a connection may take to send a request's headers
                                 (default "5s")
  --web.idle-timeout DURATION    how long a kept-alive connection may wait for its next request
                                 (default "10s")
  --metrics-label-filter LIST    labels series carry, from ${FILTER_LABELS.join(', ')}
                                 (default "${DEFAULT_LABEL_FILTER.join(',')}")
  --metrics-series-limit N       series per metric, rolled-up ones included; further label sets
                                 roll up into coarser overflow="true" series (default 2000)
  --metrics-pod-labels LIST      Kubernetes pod labels series carry, as KEY or KEY=NAME
                                 (app.kubernetes.io/name is exported as app_kubernetes_io_name;
                                 default none; see docs/pod-labels.md)
  --metrics-rollup-order LIST    the order labels are dropped in when label sets roll up
                                 (default "${DEFAULT_ROLLUP_ORDER.join(',')}"; see docs/rollup.md)
  --metrics-rollup-reserve PCT   share of the series limit kept for rolled-up series
                                 (default ${DEFAULT_ROLLUP_RESERVE_PERCENT})
  --metrics-series-ttl DURATION  how long a removed cgroup's series outlive it (default "1m")
  --kubeconfig FILE              Kubernetes API access (default: in-cluster config when
                                 KUBERNETES_SERVICE_HOST is set, else host labels only)
  --node-name NAME               this node's name (default $NODE_NAME, then the hostname)
  --log-level LEVEL              ${LOG_LEVELS.join(', ')} (default "info")
  --kernel-btf FILE              kernel BTF to use instead of /sys/kernel/btf/vmlinux
  --bpf-map-capacity N           entries of the in-kernel counter map (default 16384)
  --bpf-stats on|off             have the kernel time every BPF program of the host, for the
                                 run-time metrics (costs every program run, tally's or not,
                                 two clock reads; default "off")
  --bpf-pin-dir DIR              keep counting across restarts and upgrades: pin the counters,
                                 and the programs that count, in DIR (in a bpffs, usually
                                 /sys/fs/bpf/tally) at stop, and continue them at the next
                                 start (default: off, nothing pinned; see docs/restart.md)
  --bpf-pin-daemonset NAMESPACE/NAME
                                 the DaemonSet this agent runs in: at stop, hand over only if it
                                 still exists; if it is gone or being deleted (an uninstall),
                                 detach everything and clear --bpf-pin-dir instead (needs
                                 --bpf-pin-dir, Kubernetes access and get on that DaemonSet)
  --binary-cache-capacity N      executable paths kept in user space (default 16384)
  --policy-dir DIR               your policy files (MetricsPolicy or Tetragon TracingPolicy YAML),
                                 applied as they are added, changed or removed, and on SIGHUP
  --builtin-policies LIST        which built-in policies run, from ${BUILTIN_POLICIES.join(', ')},
                                 or "none" (default: all but tcp-peers and udp-peers)
  --metrics-peer-cidrs LIST      peer classes for the peer_class of tcp-peers and udp-peers, as NAME=CIDR items, e.g.
                                 vpc=10.0.0.0/8,internet=0.0.0.0/0,internet=::/0; the longest prefix
                                 wins; loopback, node, unknown and the zone classes are tally's own;
                                 in a cluster, Service endpoints come from EndpointSlices (docs/peers.md)
  --metrics-peer-cidrs-file FILE the same items in a file, one or more per line, '#' comments; a new
                                 version (a ConfigMap update) is applied while the agent runs, and an
                                 invalid one is refused and logged, keeping the classes in use
  --otlp-endpoint URL            also push metrics over OTLP to this collector (default
                                 $OTEL_EXPORTER_OTLP_METRICS_ENDPOINT or $OTEL_EXPORTER_OTLP_ENDPOINT,
                                 else no OTLP; headers and timeout from OTEL_EXPORTER_OTLP_*;
                                 see docs/otlp.md)
  --otlp-protocol PROTOCOL       ${OTLP_PROTOCOLS.join(' or ')} (default $OTEL_EXPORTER_OTLP_PROTOCOL,
                                 else "http/protobuf")
  --otlp-interval DURATION       how often to push over OTLP (default "${DEFAULT_OTLP_INTERVAL}")
  --version                      print the version and exit
  --help                         print this help and exit
`;

export type Parsed = { kind: 'help' } | { kind: 'version' } | { kind: 'run'; config: AgentConfig };

function positiveInt(flag: string, text: string, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new UsageError(`${flag} "${text}" must be a whole number from 1 to ${max}`);
  }
  return n;
}

function percent(flag: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 90) throw new UsageError(`${flag} "${text}" must be a whole percentage from 0 to 90`);
  return n;
}

/** A server timeout: from 100ms to 1h; minutes are what the defaults of Node were, and what let idle sockets pile up. */
function timeout(flag: string, text: string): number {
  const ms = parseDuration(flag, text);
  if (ms < 100 || ms > 3_600_000) throw new UsageError(`${flag} "${text}" must be from 100ms to 1h`);
  return ms;
}

function onOff(flag: string, text: string): boolean {
  if (text !== 'on' && text !== 'off') throw new UsageError(`${flag} "${text}" must be on or off`);
  return text === 'on';
}

function parseBuiltins(text: string): string[] {
  if (text === 'none') return [];
  const names = text.split(',').map((s) => s.trim());
  for (const n of names) {
    if (!(BUILTIN_POLICIES as readonly string[]).includes(n)) {
      throw new UsageError(`--builtin-policies: unknown policy "${n}"; the built-ins are ${BUILTIN_POLICIES.join(', ')}, or give "none"`);
    }
  }
  return names;
}

function existingDir(flag: string, dir: string): string {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    throw new UsageError(`${flag} ${dir}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (e as Error).message}`);
  }
  if (!st.isDirectory()) throw new UsageError(`${flag} ${dir} is not a directory; give the directory that holds the policy files`);
  return dir;
}

/** `env`: where the OTEL_EXPORTER_OTLP_* and NODE_NAME variables are read. */
/**
 * `--flag -3` as `--flag=-3`. parseArgs calls a value that starts with "-"
 * ambiguous (it could be a flag), but no flag looks like a number, and the
 * value's own check then says in one line what is wrong with it.
 */
function joinNegativeNumbers(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const next = argv[i + 1];
    if (/^--[a-z][-a-z]*$/.test(argv[i]) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${argv[i]}=${next}`);
      i++;
    } else out.push(argv[i]);
  }
  return out;
}

/** parseArgs's message on one line: its hints follow the first sentence on lines of their own. */
function oneLine(message: string): string {
  const [first, ...rest] = message.split('\n').map((l) => l.trim()).filter(Boolean);
  const ambiguous = /^Option '(--[^']+)' argument is ambiguous/.exec(first);
  if (ambiguous) return `${ambiguous[1]} needs a value; write ${ambiguous[1]}=VALUE for a value that starts with "-"`;
  return [first.replace(/\.$/, ''), ...rest.map((l) => l.replace(/\.$/, ''))].join('; ');
}

export function parseFlags(argv: string[], env: Readonly<Record<string, string | undefined>> = process.env): Parsed {
  let values;
  try {
    ({ values } = parseArgs({
      args: joinNegativeNumbers(argv),
      strict: true,
      allowPositionals: false,
      options: {
        'metrics-server': { type: 'string', default: ':2112' },
        'web.config.file': { type: 'string' },
        'web.max-connections': { type: 'string', default: String(DEFAULT_HTTP_LIMITS.maxConnections) },
        'web.read-header-timeout': { type: 'string', default: `${DEFAULT_HTTP_LIMITS.headerTimeoutMs / 1000}s` },
        'web.idle-timeout': { type: 'string', default: `${DEFAULT_HTTP_LIMITS.idleTimeoutMs / 1000}s` },
        'metrics-label-filter': { type: 'string', default: DEFAULT_LABEL_FILTER.join(',') },
        'metrics-series-limit': { type: 'string', default: '2000' },
        'metrics-series-ttl': { type: 'string', default: '1m' },
        'metrics-pod-labels': { type: 'string', default: '' },
        'metrics-rollup-order': { type: 'string', default: DEFAULT_ROLLUP_ORDER.join(',') },
        'metrics-rollup-reserve': { type: 'string', default: String(DEFAULT_ROLLUP_RESERVE_PERCENT) },
        'log-level': { type: 'string', default: 'info' },
        'kernel-btf': { type: 'string' },
        kubeconfig: { type: 'string' },
        'node-name': { type: 'string' },
        'bpf-map-capacity': { type: 'string', default: '16384' },
        'bpf-stats': { type: 'string', default: 'off' },
        'bpf-pin-dir': { type: 'string' },
        'bpf-pin-daemonset': { type: 'string' },
        'binary-cache-capacity': { type: 'string', default: '16384' },
        'policy-dir': { type: 'string' },
        'builtin-policies': { type: 'string', default: DEFAULT_BUILTIN_POLICIES.join(',') },
        'metrics-peer-cidrs': { type: 'string', default: '' },
        'metrics-peer-cidrs-file': { type: 'string' },
        'otlp-endpoint': { type: 'string' },
        'otlp-protocol': { type: 'string' },
        'otlp-interval': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    }));
  } catch (e) {
    // parseArgs words its errors well, but over several lines; add where to look.
    throw new UsageError(`${oneLine((e as Error).message)}; run tally --help for the flags`);
  }
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };

  const level = values['log-level']!;
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(`--log-level "${level}" is not one of ${LOG_LEVELS.join(', ')}`);
  }
  try {
    const labelFilter = LabelFilter.parse(values['metrics-label-filter']!);
    const podLabels = PodLabels.parse(values['metrics-pod-labels']!);
    return {
      kind: 'run',
      config: {
        metricsServer: parseListenAddress(values['metrics-server']!),
        // Loaded now, so a bad file ends the agent before anything is loaded.
        webConfig: values['web.config.file'] === undefined ? undefined : loadWebConfig(values['web.config.file']),
        httpLimits: {
          maxConnections: positiveInt('--web.max-connections', values['web.max-connections']!, 65536),
          headerTimeoutMs: timeout('--web.read-header-timeout', values['web.read-header-timeout']!),
          idleTimeoutMs: timeout('--web.idle-timeout', values['web.idle-timeout']!),
        },
        labelFilter,
        podLabels,
        rollup: new RollupPlan(labelFilter, parseRollupOrder(values['metrics-rollup-order']!, labelFilter, podLabels), percent('--metrics-rollup-reserve', values['metrics-rollup-reserve']!), podLabels),
        seriesLimit: positiveInt('--metrics-series-limit', values['metrics-series-limit']!, 10_000_000),
        seriesTtlMs: parseDuration('--metrics-series-ttl', values['metrics-series-ttl']!),
        logLevel: level as LogLevel,
        kernelBtfPath: values['kernel-btf'],
        kubeconfig: values.kubeconfig,
        nodeName: values['node-name'] ?? env.NODE_NAME ?? os.hostname(),
        counterMapCapacity: positiveInt('--bpf-map-capacity', values['bpf-map-capacity']!, 1 << 24),
        bpfStats: onOff('--bpf-stats', values['bpf-stats']!),
        pinDir: values['bpf-pin-dir'] === undefined ? undefined : pinDir(values['bpf-pin-dir']),
        pinDaemonSet: values['bpf-pin-daemonset'] === undefined ? undefined : pinDaemonSet(values['bpf-pin-daemonset'], values['bpf-pin-dir'] !== undefined, values.kubeconfig !== undefined || !!env.KUBERNETES_SERVICE_HOST),
        cgroupCacheCapacity: 131072,
        binaryCacheCapacity: positiveInt('--binary-cache-capacity', values['binary-cache-capacity']!, 1 << 22),
        policyDir: values['policy-dir'] === undefined ? undefined : existingDir('--policy-dir', values['policy-dir']),
        builtinPolicies: parseBuiltins(values['builtin-policies']!),
        ...peerClasses(values['metrics-peer-cidrs']!, values['metrics-peer-cidrs-file']),
        otlp: resolveOtlpConfig({ endpoint: values['otlp-endpoint'], protocol: values['otlp-protocol'], interval: values['otlp-interval'] }, env),
      },
    };
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError((e as Error).message);
  }
}

/** The peer classes from --metrics-peer-cidrs or, read now so that a bad one stops the start, --metrics-peer-cidrs-file. */
function peerClasses(list: string, file: string | undefined): Pick<AgentConfig, 'peerCidrs' | 'peerCidrsFile'> {
  if (file === undefined) return { peerCidrs: parsePeerCidrs(list) };
  if (list !== '') throw new UsageError(`${PEER_CIDRS_FLAG} and ${PEER_CIDRS_FILE_FLAG} both give the peer classes; keep one`);
  const { cidrs, text } = readPeerCidrsFile(file);
  return { peerCidrs: cidrs, peerCidrsFile: { path: path.resolve(file), text } };
}

/** --bpf-pin-dir: an absolute path, so that an agent started elsewhere finds the same pins. */
export function pinDir(dir: string): string {
  if (!path.isAbsolute(dir)) throw new UsageError(`--bpf-pin-dir "${dir}" is not an absolute path; give one in a bpffs, such as /sys/fs/bpf/tally`);
  return path.normalize(dir);
}

/** A DNS-1123 label or subdomain: what Kubernetes allows as a namespace or DaemonSet name. */
const K8S_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * --bpf-pin-daemonset NAMESPACE/NAME: meaningful only with --bpf-pin-dir
 * (there is nothing to hand over without it) and a Kubernetes client (where
 * else would the DaemonSet be read).
 */
export function pinDaemonSet(text: string, withPinDir: boolean, withKubernetes: boolean): { namespace: string; name: string } {
  const parts = text.split('/');
  if (parts.length !== 2 || !parts.every((p) => p.length <= 253 && K8S_NAME.test(p))) {
    throw new UsageError(`--bpf-pin-daemonset "${text}" must be NAMESPACE/NAME, such as monitoring/tally: the namespace and name of the DaemonSet this agent runs in`);
  }
  if (!withPinDir) throw new UsageError('--bpf-pin-daemonset needs --bpf-pin-dir: without it nothing is handed over, so there is nothing to decide at stop; add --bpf-pin-dir or drop --bpf-pin-daemonset');
  if (!withKubernetes) throw new UsageError('--bpf-pin-daemonset needs Kubernetes access to read the DaemonSet: give --kubeconfig, or run in a pod (KUBERNETES_SERVICE_HOST set); else drop --bpf-pin-daemonset');
  return { namespace: parts[0], name: parts[1] };
}
