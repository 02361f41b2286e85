/**
 * The Helm chart in helm/tally, tested without helm or a cluster: its values
 * against its schema, its generated docs against the generator, and its
 * templates rendered (test/helpers/helm-template.ts) into objects whose
 * fields are checked kind by kind, down to the arguments the agent would get.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as yaml from 'js-yaml';
import Ajv from 'ajv';
import { PROJECT_ROOT } from '../src/util/paths';
import { HELP, parseFlags } from '../src/cli/args';
import { parseListenAddress } from '../src/cli/address';
import { FILTER_LABELS, parseLabelFilter } from '../src/labels/label-filter';
import { LOG_LEVELS } from '../src/util/log';
import { parseDuration } from '../src/util/duration';
import { DEFAULT_OTLP_INTERVAL } from '../src/exporters/otlp/config';
import { loadChart, manifests, mergeValues, renderChart } from './helpers/helm-template';

const CHART_DIR = path.join(PROJECT_ROOT, 'helm', 'tally');
const chart = loadChart(CHART_DIR);
const schema = JSON.parse(fs.readFileSync(path.join(CHART_DIR, 'values.schema.json'), 'utf8')) as Record<string, unknown>;
const validate = new Ajv({ strict: true, allowUnionTypes: true, allErrors: true }).compile(schema);

const RELEASE = 'obs';
const NAMESPACE = 'monitoring';
/** The environment the agent parses its flags in: a pod's, where the API server is known. */
const IN_A_POD = { KUBERNETES_SERVICE_HOST: '10.96.0.1' };

/** The agent's flags, from its --help text. */
const AGENT_FLAGS = new Set([...HELP.matchAll(/^ {2}(--[a-z][a-z.-]*)/gm)].map((m) => m[1]));
/** Flags being added to the agent: the chart may pass them, but only when asked to. */
const COMING_FLAGS = new Set(['--policy-dir']);

/** A rendered object, read field by field as the checks need. */
type Obj = Record<string, any>;

interface Rendered {
  text: Map<string, string>;
  objects: Obj[];
}

/** Validates the merged values against the schema, as helm does before rendering, then renders. */
function render(values: Obj = {}, extraFiles: Record<string, string> = {}, releaseName = RELEASE): Rendered {
  assert.ok(validate(mergeValues(chart.values, values)), `test values break the schema: ${JSON.stringify(validate.errors)}`);
  const text = renderChart(chart, { values, releaseName, namespace: NAMESPACE, extraFiles });
  return { text, objects: manifests(text) };
}

function all(r: Rendered, kind: string): Obj[] {
  return r.objects.filter((o) => o.kind === kind);
}

function one(r: Rendered, kind: string, name?: string): Obj {
  const found = all(r, kind).filter((o) => name === undefined || o.metadata.name === name);
  assert.equal(found.length, 1, `exactly one ${kind}${name ? ` named ${name}` : ''}, found ${found.length}`);
  return found[0];
}

const subset = (small: Record<string, string>, big: Record<string, string>): boolean => Object.entries(small).every(([k, v]) => big?.[k] === v);

const API_VERSIONS: Record<string, string> = {
  DaemonSet: 'apps/v1',
  ConfigMap: 'v1',
  Service: 'v1',
  ServiceAccount: 'v1',
  ClusterRole: 'rbac.authorization.k8s.io/v1',
  ClusterRoleBinding: 'rbac.authorization.k8s.io/v1',
  Role: 'rbac.authorization.k8s.io/v1',
  RoleBinding: 'rbac.authorization.k8s.io/v1',
  ServiceMonitor: 'monitoring.coreos.com/v1',
  PrometheusRule: 'monitoring.coreos.com/v1',
};
const CLUSTER_SCOPED = new Set(['ClusterRole', 'ClusterRoleBinding']);

/** What every object of every render must have. */
function checkCommon(r: Rendered): void {
  const seen = new Set<string>();
  for (const o of r.objects) {
    assert.equal(o.apiVersion, API_VERSIONS[o.kind], `apiVersion of ${o.kind}`);
    assert.equal(typeof o.metadata?.name, 'string', `${o.kind} has metadata.name`);
    assert.match(o.metadata.name, /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, `${o.kind} name is a DNS label`);
    if (CLUSTER_SCOPED.has(o.kind)) assert.equal(o.metadata.namespace, undefined, `${o.kind} is cluster-scoped`);
    else assert.equal(o.metadata.namespace, NAMESPACE, `${o.kind} ${o.metadata.name} namespace`);
    assert.equal(o.metadata.labels['app.kubernetes.io/instance'], RELEASE, `${o.kind} instance label`);
    const key = `${o.kind}/${o.metadata.name}`;
    assert.ok(!seen.has(key), `${key} rendered twice`);
    seen.add(key);
  }
}

/** The DaemonSet's invariants, whatever the values. */
function checkDaemonSet(r: Rendered): Obj {
  const ds = one(r, 'DaemonSet');
  const pod = ds.spec.template;
  assert.ok(Object.keys(ds.spec.selector.matchLabels).length > 0, 'a selector');
  assert.ok(subset(ds.spec.selector.matchLabels, pod.metadata.labels), 'selector.matchLabels are among the pod labels');
  assert.equal(pod.spec.hostPID, true);
  assert.ok(pod.spec.containers.length >= 1);
  for (const c of pod.spec.containers) {
    assert.equal(typeof c.name, 'string');
    assert.match(c.image, /^[^:\s]+:[^:\s]+$/, 'image is repository:tag');
  }
  const volumes = new Map<string, Obj>(pod.spec.volumes.map((v: Obj) => [v.name, v]));
  assert.equal(volumes.size, pod.spec.volumes.length, 'volume names are unique');
  const mounted = new Set<string>();
  for (const c of pod.spec.containers) {
    for (const m of c.volumeMounts ?? []) {
      assert.ok(volumes.has(m.name), `volumeMount ${m.name} has a volume`);
      mounted.add(m.name);
    }
  }
  assert.deepEqual([...volumes.keys()].filter((v) => !mounted.has(v)), [], 'every volume is mounted');
  const sc = pod.spec.containers[0].securityContext;
  // Kubernetes' own validation: these two combinations are rejected.
  if (sc.allowPrivilegeEscalation === false) {
    assert.notEqual(sc.privileged, true, 'allowPrivilegeEscalation: false with privileged: true');
    assert.ok(!(sc.capabilities?.add ?? []).some((c: string) => /^(CAP_)?SYS_ADMIN$/.test(c)), 'allowPrivilegeEscalation: false with SYS_ADMIN');
  }
  return ds;
}

function container(r: Rendered): Obj {
  return one(r, 'DaemonSet').spec.template.spec.containers[0];
}

/**
 * The container's arguments as the agent receives them: each $(VAR) expanded
 * from the container's env, each env value read from its ConfigMap key, as
 * the kubelet does. An undefined variable or key fails.
 */
function agentArgs(r: Rendered): string[] {
  const c = container(r);
  const env = new Map<string, string>();
  for (const e of c.env ?? []) {
    if (typeof e.value === 'string') env.set(e.name, e.value);
    const ref = e.valueFrom?.configMapKeyRef;
    if (ref) {
      const cm = one(r, 'ConfigMap', ref.name);
      assert.ok(Object.prototype.hasOwnProperty.call(cm.data, ref.key), `ConfigMap ${ref.name} has key ${ref.key} (for ${e.name})`);
      assert.equal(typeof cm.data[ref.key], 'string', `ConfigMap ${ref.name} key ${ref.key} is a string`);
      env.set(e.name, cm.data[ref.key]);
    }
  }
  return (c.args as string[]).map((a) =>
    a.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name?: string) => {
      if (!name) return '$';
      assert.ok(env.has(name), `argument ${a} refers to $(${name}), which the container's env does not define`);
      return env.get(name)!;
    }),
  );
}

function flagsOf(args: string[]): string[] {
  return args.map((a) => {
    const m = /^(--[a-z][a-z.-]*)(=|$)/.exec(a);
    assert.ok(m, `argument "${a}" is a --flag or --flag=value`);
    return m![1];
  });
}

function sha256(s: string): string {
  return crypto.createHash('sha256').update(s).digest('hex');
}

describe('helm chart metadata', () => {
  it('Chart.yaml is an application chart at the agent version', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8'));
    assert.equal(chart.meta.apiVersion, 'v2');
    assert.equal(chart.meta.name, 'tally');
    assert.equal(chart.meta.type, 'application');
    assert.equal(chart.meta.appVersion, pkg.version);
    assert.match(String(chart.meta.version), /^\d+\.\d+\.\d+$/);
  });

  it('packages no tooling: .Files holds only files/', () => {
    assert.deepEqual([...chart.files.keys()].filter((f) => !f.startsWith('files/') && f !== 'README.md'), []);
  });
});

describe('helm values schema', () => {
  const bad = (patch: Obj, instancePath: string, keyword: string): void => {
    const merged = mergeValues(chart.values, patch);
    assert.equal(validate(merged), false, `${JSON.stringify(patch)} must be rejected`);
    assert.ok(
      validate.errors!.some((e) => e.instancePath === instancePath && e.keyword === keyword),
      `${JSON.stringify(patch)}: expected ${keyword} at ${instancePath}, got ${JSON.stringify(validate.errors)}`,
    );
  };

  it('accepts values.yaml', () => {
    assert.ok(validate(chart.values), JSON.stringify(validate.errors));
  });

  it('rejects values of the wrong type', () => {
    bad({ config: { seriesLimit: '2000' } }, '/config/seriesLimit', 'type');
    bad({ config: { seriesLimit: 2000.5 } }, '/config/seriesLimit', 'type');
    bad({ config: { seriesLimit: 0 } }, '/config/seriesLimit', 'minimum');
    bad({ prometheusRule: { runbookBaseUrl: 'docs/runbooks.md' } }, '/prometheusRule/runbookBaseUrl', 'pattern');
    bad({ securityContext: { privileged: 'yes' } }, '/securityContext/privileged', 'type');
    bad({ rbac: { create: 1 } }, '/rbac/create', 'type');
    bad({ tolerations: 'all' }, '/tolerations', 'type');
    bad({ extraArgs: [7] }, '/extraArgs/0', 'type');
    bad({ metricsPort: 70000 }, '/metricsPort', 'maximum');
  });

  it('rejects words outside an enum and malformed strings', () => {
    bad({ config: { logLevel: 'verbose' } }, '/config/logLevel', 'enum');
    bad({ config: { labelFilter: ['workload', 'pods'] } }, '/config/labelFilter/1', 'enum');
    bad({ config: { labelFilter: ['pod', 'pod'] } }, '/config/labelFilter', 'uniqueItems');
    bad({ otlp: { protocol: 'http' } }, '/otlp/protocol', 'enum');
    bad({ image: { pullPolicy: 'Sometimes' } }, '/image/pullPolicy', 'enum');
    bad({ config: { seriesTtl: '5 minutes' } }, '/config/seriesTtl', 'pattern');
    bad({ policies: { 'my policy.yaml': 'x' } }, '/policies', 'propertyNames');
    bad({ securityContext: { capabilities: { add: ['cap_bpf'] } } }, '/securityContext/capabilities/add/0', 'pattern');
  });

  it("allows the agent's label names and log levels, no more and no fewer", () => {
    const props = (schema.properties as Obj).config.properties;
    assert.deepEqual(props.labelFilter.items.enum, [...FILTER_LABELS]);
    assert.deepEqual(props.logLevel.enum, [...LOG_LEVELS]);
  });

  it('takes the durations the agent parses, and refuses the ones it refuses', () => {
    const re = new RegExp((schema.properties as Obj).config.properties.seriesTtl.pattern);
    for (const d of ['1m', '30s', '500ms', '1m30s', '1.5h', '90s', '', '5 minutes', '1d', 'm', '1m ', '-1s']) {
      let agentOk = true;
      try {
        parseDuration('--x', d);
      } catch {
        agentOk = false;
      }
      assert.equal(re.test(d), agentOk, `"${d}": schema ${re.test(d)}, agent ${agentOk}`);
    }
  });
});

describe('helm docs', () => {
  it('README.md and values.schema.json are what npm run helm:docs generates', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-helm-docs-'));
    try {
      const r = spawnSync(process.execPath, [path.join(PROJECT_ROOT, 'helm', 'tools', 'helm-docs.js'), '--out', out], { encoding: 'utf8' });
      assert.equal(r.status, 0, `helm-docs failed:\n${r.stdout}${r.stderr}`);
      for (const f of ['README.md', 'values.schema.json']) {
        const want = fs.readFileSync(path.join(out, f), 'utf8');
        assert.equal(fs.readFileSync(path.join(CHART_DIR, f), 'utf8'), want, `helm/tally/${f} is stale: run npm run helm:docs`);
      }
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('helm chart with default values', () => {
  const r = render();

  it('renders exactly the always-on objects, each well formed', () => {
    checkCommon(r);
    assert.deepEqual(r.objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
      'ClusterRole/obs-tally',
      'ClusterRoleBinding/obs-tally',
      'ConfigMap/obs-tally-config',
      'ConfigMap/obs-tally-dashboard-tally-agent-health',
      'ConfigMap/obs-tally-dashboard-tally-files-processes',
      'ConfigMap/obs-tally-dashboard-tally-network',
      'DaemonSet/obs-tally',
      'Role/obs-tally',
      'RoleBinding/obs-tally',
      'Service/obs-tally',
      'ServiceAccount/obs-tally',
    ]);
  });

  it('runs the agent image as root with the capabilities, read-only, on every node', () => {
    const ds = checkDaemonSet(r);
    const pod = ds.spec.template.spec;
    const c = pod.containers[0];
    // The name `npm run image` builds and saves (scripts/image/build.sh).
    assert.equal(c.image, 'localhost/tally:0.1.0');
    const buildSh = fs.readFileSync(path.join(PROJECT_ROOT, 'scripts', 'image', 'build.sh'), 'utf8');
    assert.match(buildSh, /^IMAGE="\$\{TALLY_IMAGE:-localhost\/tally:\$VERSION\}"$/m);
    assert.deepEqual(c.securityContext, {
      runAsUser: 0,
      runAsNonRoot: false,
      readOnlyRootFilesystem: true,
      privileged: false,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'], add: ['BPF', 'PERFMON', 'SYS_RESOURCE', 'DAC_READ_SEARCH'] },
    });
    assert.deepEqual(pod.tolerations, [{ operator: 'Exists' }]);
    assert.equal(pod.priorityClassName, 'system-node-critical');
    assert.deepEqual(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
    assert.deepEqual(c.resources, { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '512Mi' } });
    assert.equal(pod.serviceAccountName, 'obs-tally');
  });

  it('mounts the host paths the agent reads, read-only at the same paths (the bpffs writable, for --bpf-pin-dir), and no /proc', () => {
    const pod = one(r, 'DaemonSet').spec.template.spec;
    const mounts = pod.containers[0].volumeMounts as Obj[];
    const byMount = new Map(mounts.map((m) => [m.mountPath, m]));
    assert.deepEqual([...byMount.keys()].sort(), ['/sys/fs/bpf', '/sys/fs/cgroup', '/sys/kernel/btf', '/sys/kernel/tracing']);
    for (const m of mounts) {
      assert.equal(m.readOnly, m.mountPath !== '/sys/fs/bpf', `${m.mountPath} read-only unless the bpffs`);
      const v = pod.volumes.find((x: Obj) => x.name === m.name);
      assert.deepEqual(v.hostPath, { path: m.mountPath, type: 'Directory' }, `${m.mountPath} is the host's`);
    }
  });

  it('probes /healthz and /readyz on the metrics port, served on 2112', () => {
    const c = container(r);
    assert.deepEqual(c.ports, [{ name: 'metrics', containerPort: 2112, protocol: 'TCP' }]);
    assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'metrics' });
    assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'metrics' });
    assert.ok(agentArgs(r).includes('--metrics-server=:2112'));
  });

  it('passes the node name from the downward API', () => {
    const e = container(r).env.find((x: Obj) => x.name === 'NODE_NAME');
    assert.deepEqual(e, { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } });
  });

  it("passes only the agent's real flags, which parse to the agent's own defaults but for restart persistence, which the chart turns on", () => {
    const args = agentArgs(r);
    const unknown = flagsOf(args).filter((f) => !AGENT_FLAGS.has(f));
    assert.deepEqual(unknown, [], `flags the agent does not have (tally --help): ${unknown.join(' ')}`);
    const parsed = parseFlags(args, IN_A_POD);
    const defaults = parseFlags([]);
    assert.ok(parsed.kind === 'run' && defaults.kind === 'run');
    assert.equal(parsed.config.pinDir, '/sys/fs/bpf/tally');
    assert.deepEqual(parsed.config.pinDaemonSet, { namespace: NAMESPACE, name: 'obs-tally' });
    assert.equal(defaults.config.pinDir, undefined);
    assert.deepEqual({ ...parsed.config, pinDir: undefined, pinDaemonSet: undefined }, defaults.config, 'the chart defaults are the agent defaults');
  });

  it('mounts the bpffs writable for --bpf-pin-dir, and read-only with no flag when config.bpfPinDir is empty', () => {
    const mountOf = (rr: typeof r): Obj => container(rr).volumeMounts.find((m: Obj) => m.name === 'bpffs');
    assert.deepEqual(mountOf(r), { name: 'bpffs', mountPath: '/sys/fs/bpf', readOnly: false });
    const off = render({ config: { bpfPinDir: '' } });
    assert.deepEqual(mountOf(off), { name: 'bpffs', mountPath: '/sys/fs/bpf', readOnly: true });
    assert.equal(one(off, 'ConfigMap', 'obs-tally-config').data['bpf-pin-dir'], undefined);
    assert.equal(one(off, 'ConfigMap', 'obs-tally-config').data['bpf-pin-daemonset'], undefined);
    assert.ok(!agentArgs(off).some((a) => a.startsWith('--bpf-pin-')));
    assert.deepEqual(all(off, 'Role'), [], 'nothing pinned, nothing to decide at stop: no DaemonSet to read');
  });

  it('writes every flag but --metrics-server to the ConfigMap, and passes each through one env var', () => {
    const cm = one(r, 'ConfigMap', 'obs-tally-config');
    assert.deepEqual(cm.data, {
      'builtin-policies': 'tcp-bytes,tcp-retransmits,file-writes,process',
      'metrics-label-filter': 'namespace,workload,pod,binary',
      'metrics-series-limit': '2000',
      'metrics-rollup-order': 'container,pod_labels,pod,binary,workload,namespace',
      'metrics-rollup-reserve': '25',
      'metrics-series-ttl': '1m',
      'log-level': 'info',
      'bpf-stats': 'off',
      'bpf-pin-dir': '/sys/fs/bpf/tally',
      'bpf-pin-daemonset': `${NAMESPACE}/obs-tally`,
    });
    const viaEnv = (container(r).args as string[]).filter((a) => a.includes('$('));
    assert.deepEqual(viaEnv.map((a) => a.replace(/=.*/, '')).sort(), Object.keys(cm.data).map((k) => `--${k}`).sort());
  });

  it('rolls the pods when the flags ConfigMap changes: checksum/config is its SHA-256', () => {
    const ann = one(r, 'DaemonSet').spec.template.metadata.annotations;
    assert.equal(ann['checksum/config'], sha256(r.text.get('tally/templates/configmap.yaml')!));
    assert.equal(ann['checksum/policies'], undefined, 'no policies, no policies checksum');
    const again = one(render(), 'DaemonSet').spec.template.metadata.annotations['checksum/config'];
    const changed = one(render({ config: { logLevel: 'debug' } }), 'DaemonSet').spec.template.metadata.annotations['checksum/config'];
    assert.equal(again, ann['checksum/config'], 'same values, same checksum');
    assert.notEqual(changed, ann['checksum/config'], 'another log level, another checksum');
  });

  const grantsOf = (role: Obj): string[] => {
    const grants = new Set<string>();
    for (const rule of role.rules) {
      for (const g of rule.apiGroups) for (const res of rule.resources) for (const v of rule.verbs) grants.add(`${g}/${res}:${v}`);
    }
    return [...grants].sort();
  };
  const labelReads = ['/pods', 'apps/replicasets', 'batch/jobs'].flatMap((res) => ['get', 'list', 'watch'].map((v) => `${res}:${v}`));

  it('grants read access to pods, replicasets and jobs, and nothing else', () => {
    assert.deepEqual(grantsOf(one(r, 'ClusterRole')), labelReads.sort());
    assert.equal(one(r, 'ConfigMap', 'obs-tally-config').data['builtin-policies'], 'tcp-bytes,tcp-retransmits,file-writes,process');
    assert.equal(one(r, 'ConfigMap', 'obs-tally-config').data['metrics-peer-cidrs'], undefined);
  });

  it('with tcp-peers: adds list+watch of EndpointSlices and get of Nodes, and mounts the peer CIDRs as a file the agent follows', () => {
    const peers = render({ config: { builtinPolicies: ['tcp-bytes', 'tcp-peers'], peerCidrs: ['vpc=10.0.0.0/8', 'internet=0.0.0.0/0'] } });
    assert.deepEqual(grantsOf(one(peers, 'ClusterRole')), [...labelReads, 'discovery.k8s.io/endpointslices:list', 'discovery.k8s.io/endpointslices:watch', '/nodes:get'].sort());
    const data = one(peers, 'ConfigMap', 'obs-tally-config').data;
    assert.equal(data['builtin-policies'], 'tcp-bytes,tcp-peers');
    assert.equal(data['metrics-peer-cidrs'], undefined);
    const cm = one(peers, 'ConfigMap', 'obs-tally-peer-cidrs');
    assert.equal(cm.data['peer-cidrs'], 'vpc=10.0.0.0/8\ninternet=0.0.0.0/0\n');
    const mount = container(peers).volumeMounts.find((m: Obj) => m.name === 'peer-cidrs');
    assert.equal(mount.readOnly, true);
    assert.equal(data['metrics-peer-cidrs-file'], `${mount.mountPath}/peer-cidrs`);
    assert.ok(agentArgs(peers).includes(`--metrics-peer-cidrs-file=${mount.mountPath}/peer-cidrs`));
    assert.deepEqual(one(peers, 'DaemonSet').spec.template.spec.volumes.find((v: Obj) => v.name === 'peer-cidrs').configMap, { name: 'obs-tally-peer-cidrs' });
    // Followed live: a change must not roll the pods, so no checksum of it on the pod template.
    assert.deepEqual(Object.keys(one(peers, 'DaemonSet').spec.template.metadata.annotations).filter((k) => k.includes('peer')), []);
    // And what the chart writes, the agent reads.
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tally-chart-peers-')), 'peer-cidrs');
    fs.writeFileSync(file, cm.data['peer-cidrs']);
    const parsed = parseFlags(['--metrics-peer-cidrs-file', file]);
    assert.equal(parsed.kind === 'run' && parsed.config.peerCidrs.map((c) => c.name).join(','), 'vpc,internet');
    fs.rmSync(path.dirname(file), { recursive: true });
    assert.equal(one(render({ config: { builtinPolicies: [] } }), 'ConfigMap', 'obs-tally-config').data['builtin-policies'], 'none');
  });

  it('with udp-peers alone: the same grants as tcp-peers, and CAP_NET_ADMIN for its cgroup_skb programs (only then)', () => {
    const udp = render({ config: { builtinPolicies: ['udp-peers'] } });
    assert.deepEqual(container(udp).securityContext.capabilities.add, ['BPF', 'PERFMON', 'SYS_RESOURCE', 'DAC_READ_SEARCH', 'NET_ADMIN']);
    assert.ok(!container(r).securityContext.capabilities.add.includes('NET_ADMIN'), 'not without udp-peers');
    const given = render({ config: { builtinPolicies: ['udp-peers'] }, securityContext: { capabilities: { add: ['BPF', 'PERFMON', 'NET_ADMIN'] } } });
    assert.deepEqual(container(given).securityContext.capabilities.add, ['BPF', 'PERFMON', 'NET_ADMIN'], 'not twice');
    assert.deepEqual(grantsOf(one(udp, 'ClusterRole')), [...labelReads, 'discovery.k8s.io/endpointslices:list', 'discovery.k8s.io/endpointslices:watch', '/nodes:get'].sort());
    assert.equal(one(udp, 'ConfigMap', 'obs-tally-config').data['builtin-policies'], 'udp-peers');
  });

  it('lets the agent get its own DaemonSet, by name, in its namespace (--bpf-pin-daemonset), and nothing more', () => {
    const role = one(r, 'Role');
    assert.equal(role.metadata.namespace, NAMESPACE);
    assert.deepEqual(role.rules, [{ apiGroups: ['apps'], resources: ['daemonsets'], resourceNames: [one(r, 'DaemonSet').metadata.name], verbs: ['get'] }]);
    const binding = one(r, 'RoleBinding');
    assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name });
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: one(r, 'ServiceAccount').metadata.name, namespace: NAMESPACE }]);
  });

  it('binds the role to the ServiceAccount the pods run as', () => {
    const binding = one(r, 'ClusterRoleBinding');
    const sa = one(r, 'ServiceAccount');
    assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: one(r, 'ClusterRole').metadata.name });
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: NAMESPACE }]);
    assert.equal(one(r, 'DaemonSet').spec.template.spec.serviceAccountName, sa.metadata.name);
  });

  it('exposes the pods through a Service on port 2112 named metrics', () => {
    const svc = one(r, 'Service');
    const podLabels = one(r, 'DaemonSet').spec.template.metadata.labels;
    assert.ok(Object.keys(svc.spec.selector).length > 0);
    assert.ok(subset(svc.spec.selector, podLabels), 'the Service selects the agent pods');
    assert.deepEqual(svc.spec.ports, [{ name: 'metrics', port: 2112, targetPort: 'metrics', protocol: 'TCP' }]);
    assert.ok(container(r).ports.some((p: Obj) => p.name === svc.spec.ports[0].targetPort), 'targetPort names a container port');
  });

  it('renders one ConfigMap per shipped dashboard, holding it unchanged', () => {
    const shipped = [...chart.files.keys()].filter((f) => f.startsWith('files/dashboards/') && f.endsWith('.json')).sort();
    assert.deepEqual(shipped, ['files/dashboards/tally-agent-health.json', 'files/dashboards/tally-files-processes.json', 'files/dashboards/tally-network.json']);
    for (const f of shipped) {
      const file = path.basename(f);
      const cm = one(r, 'ConfigMap', `obs-tally-dashboard-${file.replace(/\.json$/, '')}`);
      assert.equal(cm.metadata.labels.grafana_dashboard, '1');
      assert.deepEqual(Object.keys(cm.data), [file]);
      // The file ends in a newline, which the template trims.
      assert.equal(cm.data[file], chart.files.get(f)!.replace(/\n$/, ''), `${f} reaches the ConfigMap unchanged`);
    }
  });

  it('says in NOTES.txt how to reach the agents, and that /metrics is open to the cluster', () => {
    const notes = r.text.get('tally/templates/NOTES.txt')!;
    assert.match(notes, /rollout status daemonset\/obs-tally\n/);
    assert.match(notes, /\n {2}curl -s localhost:2112\/metrics \| grep \^tally_\n/);
    assert.match(notes, /\/metrics is plain HTTP, without authentication, on the pod IP/);
  });

  it('serves plain HTTP on every interface of the pod, with no web config', () => {
    assert.equal(agentArgs(r).filter((a) => a.startsWith('--metrics-server') || a.startsWith('--web.')).join(' '), '--metrics-server=:2112');
    assert.deepEqual(parseListenAddress(':2112'), { host: undefined, port: 2112 });
    assert.equal(container(r).volumeMounts.find((m: Obj) => m.name === 'web-config'), undefined);
    assert.equal(one(r, 'DaemonSet').spec.template.spec.volumes.find((v: Obj) => v.name === 'web-config'), undefined);
  });

  it('says in NOTES.txt how to load the archive npm run image saves, while the image is that one', () => {
    const notes = r.text.get('tally/templates/NOTES.txt')!;
    assert.match(notes, /^  ctr -n k8s\.io images import tally-0\.1\.0\.oci\.tar$/m);
    assert.match(notes, /^  skopeo copy oci-archive:tally-0\.1\.0\.oci\.tar docker:\/\/REGISTRY\/tally:0\.1\.0$/m);
    assert.match(notes, /podman load -i tally-0\.1\.0\.oci\.tar/);
    // The archive's name is the one build.sh writes.
    const buildSh = fs.readFileSync(path.join(PROJECT_ROOT, 'scripts', 'image', 'build.sh'), 'utf8');
    assert.match(buildSh, /^ARCHIVE="\$OUT\/tally-\$VERSION\.oci\.tar"$/m);
    const own = render({ image: { repository: 'registry.example/tally' } }).text.get('tally/templates/NOTES.txt')!;
    assert.doesNotMatch(own, /oci\.tar/, 'no loading instructions for an image from a registry');
  });
});

describe('helm chart toggles', () => {
  it('securityContext.privileged runs privileged instead of with capabilities', () => {
    const r = render({ securityContext: { privileged: true } });
    checkCommon(r);
    checkDaemonSet(r);
    assert.deepEqual(container(r).securityContext, { runAsUser: 0, runAsNonRoot: false, readOnlyRootFilesystem: true, privileged: true });
  });

  it('an added SYS_ADMIN drops allowPrivilegeEscalation: false, which Kubernetes would reject', () => {
    const r = render({ securityContext: { capabilities: { add: ['BPF', 'PERFMON', 'SYS_ADMIN'] } } });
    checkDaemonSet(r);
    const sc = container(r).securityContext;
    assert.equal(sc.allowPrivilegeEscalation, undefined);
    assert.deepEqual(sc.capabilities, { drop: ['ALL'], add: ['BPF', 'PERFMON', 'SYS_ADMIN'] });
  });

  it('serviceMonitor and prometheusRule add their objects, tied to the Service', () => {
    const r = render({ serviceMonitor: { enabled: true, additionalLabels: { release: 'kps' } }, prometheusRule: { enabled: true, additionalLabels: { role: 'alerts' } } });
    checkCommon(r);
    const svc = one(r, 'Service');
    const sm = one(r, 'ServiceMonitor');
    assert.equal(sm.metadata.labels.release, 'kps');
    assert.ok(subset(sm.spec.selector.matchLabels, svc.metadata.labels), 'the ServiceMonitor selects the Service');
    assert.deepEqual(sm.spec.namespaceSelector, { matchNames: [NAMESPACE] });
    assert.equal(sm.spec.endpoints.length, 1);
    const ep = sm.spec.endpoints[0];
    assert.ok(svc.spec.ports.some((p: Obj) => p.name === ep.port), `endpoint port ${ep.port} is a Service port name`);
    assert.equal(ep.path, '/metrics');
    assert.equal(ep.interval, '30s');
    assert.equal(ep.honorLabels, undefined);
    // The target labels the Prometheus Operator sets that tally's own series
    // also carry must be dropped, or the series' would become exported_*.
    const drop = ep.relabelings.filter((x: Obj) => x.action === 'labeldrop').map((x: Obj) => new RegExp(`^(?:${x.regex})$`));
    for (const label of FILTER_LABELS.filter((l) => ['namespace', 'pod', 'container'].includes(l))) {
      assert.ok(drop.some((re: RegExp) => re.test(label)), `the target's ${label} label is dropped`);
    }
    assert.ok(!drop.some((re: RegExp) => re.test('instance') || re.test('job') || re.test('node')), 'instance, job and node stay');
    assert.ok(ep.relabelings.some((x: Obj) => x.targetLabel === 'node' && x.sourceLabels[0] === '__meta_kubernetes_pod_node_name'));

    const rule = one(r, 'PrometheusRule');
    assert.equal(rule.metadata.labels.role, 'alerts');
    const spec: Obj = rule.spec;
    // files/alerts.yaml, less the relative runbook_url (no runbookBaseUrl here).
    assert.deepEqual(rule.spec, yaml.load(chart.files.get('files/alerts.yaml')!.replace(/^ *runbook_url: .*\n/gm, '')), 'the spec is files/alerts.yaml');
    assert.ok(spec.groups.length > 0);
    for (const g of spec.groups) {
      assert.equal(typeof g.name, 'string');
      assert.ok(g.rules.length > 0, `group ${g.name} has rules`);
      for (const x of g.rules) {
        assert.equal(typeof x.alert, 'string', 'each rule is an alert');
        assert.equal(typeof x.expr, 'string', `${x.alert} has an expr`);
        assert.ok(x.annotations?.summary && x.annotations?.description, `${x.alert} has summary and description`);
      }
    }
    const down = spec.groups.flatMap((g: Obj) => g.rules).find((x: Obj) => x.alert === 'TallyTargetDown');
    assert.equal(down.expr, 'up{job=~".*tally.*"} == 0');
    assert.equal(down.for, '5m');
    // The Prometheus Operator names the job after the Service.
    assert.match(svc.metadata.name, /^.*tally.*$/);
  });

  it('runbookBaseUrl makes each runbook_url absolute; without it there is none', () => {
    const alerts = (vals: Obj): Obj[] => one(render({ prometheusRule: { enabled: true, ...vals } }), 'PrometheusRule').spec.groups.flatMap((g: Obj) => g.rules);
    const source = (yaml.load(chart.files.get('files/alerts.yaml')!) as Obj).groups.flatMap((g: Obj) => g.rules);
    const base = 'https://git.example/tally/blob/v0.1.0';
    for (const b of [base, `${base}/`]) {
      const rules = alerts({ runbookBaseUrl: b });
      assert.deepEqual(
        rules.map((x) => [x.alert, x.annotations.runbook_url]),
        source.map((x: Obj) => [x.alert, `${base}/docs/runbooks.md#${x.alert.toLowerCase()}`]),
      );
      // Nothing else of the rules changed.
      assert.deepEqual(rules.map((x) => ({ ...x, annotations: { ...x.annotations, runbook_url: undefined } })), source.map((x: Obj) => ({ ...x, annotations: { ...x.annotations, runbook_url: undefined } })));
    }
    const none = alerts({});
    assert.deepEqual(none.filter((x) => 'runbook_url' in x.annotations).map((x) => x.alert), [], 'no relative runbook_url by default');
    assert.deepEqual(none.map((x) => x.annotations.summary), source.map((x: Obj) => x.annotations.summary));
    assert.equal(none.length, source.length);
  });

  it('the alert rules pass promtool check rules', () => {
    const r = render({ prometheusRule: { enabled: true } });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-rules-'));
    try {
      const file = path.join(dir, 'rules.yaml');
      fs.writeFileSync(file, yaml.dump(one(r, 'PrometheusRule').spec));
      const p = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      assert.equal(p.status, 0, `promtool check rules:\n${p.stdout}${p.stderr}`);
      const rules = (yaml.load(chart.files.get('files/alerts.yaml')!) as Obj).groups.flatMap((g: Obj) => g.rules);
      assert.match(p.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rbac.create=false leaves out the role and binding, keeps the ServiceAccount', () => {
    const r = render({ rbac: { create: false } });
    checkCommon(r);
    assert.deepEqual(all(r, 'ClusterRole'), []);
    assert.deepEqual(all(r, 'ClusterRoleBinding'), []);
    assert.deepEqual(all(r, 'Role'), []);
    assert.deepEqual(all(r, 'RoleBinding'), []);
    assert.equal(one(r, 'DaemonSet').spec.template.spec.serviceAccountName, one(r, 'ServiceAccount').metadata.name);
  });

  it('serviceAccount.create=false runs as the named (or default) account, which the binding names', () => {
    const named = render({ serviceAccount: { create: false, name: 'agents' } });
    assert.deepEqual(all(named, 'ServiceAccount'), []);
    assert.equal(one(named, 'DaemonSet').spec.template.spec.serviceAccountName, 'agents');
    assert.equal(one(named, 'ClusterRoleBinding').subjects[0].name, 'agents');
    assert.equal(one(render({ serviceAccount: { create: false } }), 'DaemonSet').spec.template.spec.serviceAccountName, 'default');
  });

  it('policies become a ConfigMap mounted at the directory passed as --policy-dir', () => {
    const policies = { 'exec.yaml': 'metrics:\n  - name: execs\n    hook: sched_process_exec\n', 'writes.yml': 'metrics: []\n' };
    const r = render({ policies });
    checkCommon(r);
    checkDaemonSet(r);
    const cm = one(r, 'ConfigMap', 'obs-tally-policies');
    assert.deepEqual(cm.data, policies);
    const c = container(r);
    const mount = c.volumeMounts.find((m: Obj) => m.name === 'policies');
    assert.equal(mount.readOnly, true);
    const volume = one(r, 'DaemonSet').spec.template.spec.volumes.find((v: Obj) => v.name === 'policies');
    assert.deepEqual(volume.configMap, { name: 'obs-tally-policies' });
    assert.ok(agentArgs(r).includes(`--policy-dir=${mount.mountPath}`), 'the agent is told where they are');
    const ann = one(r, 'DaemonSet').spec.template.metadata.annotations;
    assert.equal(ann['checksum/policies'], sha256(r.text.get('tally/templates/policies-configmap.yaml')!));
  });

  it('otlp.interval defaults to the agent\'s own --otlp-interval default', () => {
    const args = agentArgs(render({ otlp: { endpoint: 'http://collector:4318' } }));
    assert.ok(args.includes(`--otlp-interval=${DEFAULT_OTLP_INTERVAL}`), args.join(' '));
    assert.equal(DEFAULT_OTLP_INTERVAL, '15s');
  });

  it('webConfig mounts the Secret whole, passes --web.config.file, and turns the probes and the ServiceMonitor to HTTPS', () => {
    const tlsConfig = { ca: { secret: { name: 'tally-ca', key: 'ca.crt' } }, cert: { secret: { name: 'prom-client', key: 'tls.crt' } }, keySecret: { name: 'prom-client', key: 'tls.key' } };
    const basicAuth = { username: { name: 'tally-scrape', key: 'user' }, password: { name: 'tally-scrape', key: 'password' } };
    const r = render({ webConfig: { secretName: 'tally-web', tls: true }, serviceMonitor: { enabled: true, tlsConfig, basicAuth } });
    checkCommon(r);
    checkDaemonSet(r);
    const c = container(r);
    const mount = c.volumeMounts.find((m: Obj) => m.name === 'web-config');
    // No subPath: the kubelet only updates whole-volume mounts when the Secret changes.
    assert.deepEqual(mount, { name: 'web-config', mountPath: '/etc/tally/web', readOnly: true });
    const volume = one(r, 'DaemonSet').spec.template.spec.volumes.find((v: Obj) => v.name === 'web-config');
    assert.deepEqual(volume, { name: 'web-config', secret: { secretName: 'tally-web' } });
    assert.ok(agentArgs(r).includes('--web.config.file=/etc/tally/web/web-config.yml'));
    assert.deepEqual(flagsOf(agentArgs(r)).filter((f) => !AGENT_FLAGS.has(f)), []);
    assert.deepEqual(c.livenessProbe, { httpGet: { path: '/healthz', port: 'metrics', scheme: 'HTTPS' }, initialDelaySeconds: 5, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 6 });
    assert.deepEqual(c.readinessProbe, { httpGet: { path: '/readyz', port: 'metrics', scheme: 'HTTPS' }, initialDelaySeconds: 2, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 });
    const ep = one(r, 'ServiceMonitor').spec.endpoints[0];
    assert.deepEqual({ scheme: ep.scheme, tlsConfig: ep.tlsConfig, basicAuth: ep.basicAuth }, { scheme: 'https', tlsConfig, basicAuth });
    const notes = r.text.get('tally/templates/NOTES.txt')!;
    assert.match(notes, /curl -s --cacert CA\.crt https:\/\/localhost:2112\/metrics/);
    assert.doesNotMatch(notes, /plain HTTP/);
  });

  it('webConfig without TLS (basic auth only) keeps HTTP; serviceMonitor.scheme, webConfig.key and a tcpSocket probe are taken as given', () => {
    const r = render({
      webConfig: { secretName: 'tally-web', key: 'web.yml' },
      serviceMonitor: { enabled: true, scheme: 'http' },
      livenessProbe: { httpGet: null, tcpSocket: { port: 'metrics' } },
    });
    checkDaemonSet(r);
    assert.ok(agentArgs(r).includes('--web.config.file=/etc/tally/web/web.yml'));
    assert.deepEqual(container(r).readinessProbe.httpGet, { path: '/readyz', port: 'metrics' });
    assert.deepEqual(container(r).livenessProbe.tcpSocket, { port: 'metrics' });
    assert.equal(container(r).livenessProbe.httpGet, undefined);
    const ep = one(r, 'ServiceMonitor').spec.endpoints[0];
    assert.deepEqual({ scheme: ep.scheme, tlsConfig: ep.tlsConfig, basicAuth: ep.basicAuth }, { scheme: 'http', tlsConfig: undefined, basicAuth: undefined });
    const tcp = render({ webConfig: { secretName: 's', tls: true }, livenessProbe: { httpGet: null, tcpSocket: { port: 'metrics' } } });
    assert.deepEqual(container(tcp).livenessProbe, { tcpSocket: { port: 'metrics' }, initialDelaySeconds: 5, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 6 });
  });

  it('metricsHost chooses the bind address, IPv6 in brackets, as the agent parses it', () => {
    for (const [host, arg, parsed] of [
      ['127.0.0.1', '--metrics-server=127.0.0.1:2112', { host: '127.0.0.1', port: 2112 }],
      ['::1', '--metrics-server=[::1]:2112', { host: '::1', port: 2112 }],
    ] as const) {
      const args = agentArgs(render({ metricsHost: host }));
      assert.ok(args.includes(arg), `${host}: ${args.join(' ')}`);
      assert.deepEqual(parseListenAddress(arg.replace('--metrics-server=', '')), parsed);
    }
    assert.equal(validate(mergeValues(chart.values, { metricsHost: '[::1]' })), false, 'brackets are the chart\'s to add');
  });

  it('otlp.endpoint passes the otlp flags, and only then', () => {
    const r = render({ otlp: { endpoint: 'http://collector:4318', protocol: 'grpc', interval: '15s' } });
    const otlp = agentArgs(r).filter((a) => a.startsWith('--otlp-'));
    assert.deepEqual(otlp.sort(), ['--otlp-endpoint=http://collector:4318', '--otlp-interval=15s', '--otlp-protocol=grpc']);
    assert.deepEqual(agentArgs(render({ otlp: { protocol: 'grpc' } })).filter((a) => a.startsWith('--otlp-')), []);
  });

  it('config.podLabels passes --metrics-pod-labels, and only then; the agent parses it, and refuses a malformed key', () => {
    assert.deepEqual(agentArgs(render()).filter((a) => a.startsWith('--metrics-pod-labels')), []);
    const r = render({ config: { podLabels: ['app.kubernetes.io/name', 'team=owner_team'] } });
    assert.equal(one(r, 'ConfigMap', 'obs-tally-config').data['metrics-pod-labels'], 'app.kubernetes.io/name,team=owner_team');
    const parsed = parseFlags(agentArgs(r), IN_A_POD);
    assert.equal(parsed.kind, 'run');
    if (parsed.kind !== 'run') return;
    assert.deepEqual(parsed.config.podLabels.names, ['app_kubernetes_io_name', 'owner_team']);
    assert.deepEqual(parsed.config.rollup.levels, ['binary', 'workload', 'namespace'], 'pod labels roll up with pod');
    assert.equal(validate(mergeValues(chart.values, { config: { podLabels: ['app name'] } })), false, 'a key with a space');
    assert.equal(validate(mergeValues(chart.values, { config: { podLabels: ['team', 'team'] } })), false, 'a key twice');
  });

  it('every flag any toggle passes is a flag of the agent or one being added', () => {
    const r = render({ otlp: { endpoint: 'http://c:4318' }, policies: { 'a.yaml': 'x: 1' }, extraArgs: ['--bpf-map-capacity=65536'] });
    const flags = flagsOf(agentArgs(r));
    assert.deepEqual(flags.filter((f) => !AGENT_FLAGS.has(f) && !COMING_FLAGS.has(f)), []);
  });

  it('agent settings reach the agent as it parses them, large numbers included', () => {
    const r = render({
      config: { labelFilter: ['workload', 'container'], seriesLimit: 1000000, seriesTtl: '1m30s', logLevel: 'warn' },
      extraArgs: ['--bpf-map-capacity=65536'],
    });
    const parsed = parseFlags(agentArgs(r), IN_A_POD);
    assert.equal(parsed.kind, 'run');
    if (parsed.kind !== 'run') return;
    assert.deepEqual(parsed.config.labelFilter.labels, parseLabelFilter('workload,container'));
    assert.equal(parsed.config.seriesLimit, 1000000);
    assert.equal(parsed.config.seriesTtlMs, 90_000);
    assert.equal(parsed.config.logLevel, 'warn');
    assert.equal(parsed.config.counterMapCapacity, 65536);
  });

  it('extraEnv, podLabels, podAnnotations, nodeSelector, affinity, imagePullSecrets, image reach the pod', () => {
    const affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] }] } } };
    const r = render({
      extraEnv: [{ name: 'UV_THREADPOOL_SIZE', value: '2' }],
      podLabels: { team: 'obs' },
      podAnnotations: { 'example.com/note': 'x' },
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      affinity,
      imagePullSecrets: [{ name: 'regcred' }],
      image: { repository: 'registry.example/tally', tag: '1.2.3', pullPolicy: 'Always' },
      priorityClassName: '',
    });
    checkDaemonSet(r);
    const tpl = one(r, 'DaemonSet').spec.template;
    assert.deepEqual(container(r).env.at(-1), { name: 'UV_THREADPOOL_SIZE', value: '2' });
    assert.equal(tpl.metadata.labels.team, 'obs');
    assert.equal(tpl.metadata.annotations['example.com/note'], 'x');
    assert.ok(tpl.metadata.annotations['checksum/config'], 'checksum kept beside podAnnotations');
    assert.deepEqual(tpl.spec.nodeSelector, { 'kubernetes.io/os': 'linux' });
    assert.deepEqual(tpl.spec.affinity, affinity);
    assert.deepEqual(tpl.spec.imagePullSecrets, [{ name: 'regcred' }]);
    assert.equal(container(r).image, 'registry.example/tally:1.2.3');
    assert.equal(container(r).imagePullPolicy, 'Always');
    assert.equal(tpl.spec.priorityClassName, undefined);
  });

  it('hostMounts.debugfs mounts /sys/kernel/debug read-only', () => {
    const r = render({ hostMounts: { debugfs: true } });
    checkDaemonSet(r);
    const pod = one(r, 'DaemonSet').spec.template.spec;
    const m = pod.containers[0].volumeMounts.find((x: Obj) => x.mountPath === '/sys/kernel/debug');
    assert.equal(m.readOnly, true);
    assert.deepEqual(pod.volumes.find((v: Obj) => v.name === m.name).hostPath, { path: '/sys/kernel/debug', type: 'Directory' });
  });

  it('each files/dashboards/*.json becomes a ConfigMap for the Grafana sidecar', () => {
    const dashboard = JSON.stringify({ title: 'tally: TCP bytes', panels: [{ type: 'timeseries', targets: [{ expr: 'rate(tally_tcp_sent_bytes_total[5m])' }] }] }, null, 2) + '\n';
    const files = { 'files/dashboards/TCP_Bytes.json': dashboard, 'files/dashboards/notes.txt': 'not a dashboard' };
    const r = render({}, files);
    checkCommon(r);
    const cm = one(r, 'ConfigMap', 'obs-tally-dashboard-tcp-bytes');
    assert.equal(cm.metadata.labels.grafana_dashboard, '1');
    assert.deepEqual(cm.metadata.annotations, { grafana_folder: 'tally' });
    assert.deepEqual(Object.keys(cm.data), ['TCP_Bytes.json']);
    assert.deepEqual(JSON.parse(cm.data['TCP_Bytes.json']), JSON.parse(dashboard));

    const custom = render({ dashboards: { label: 'dash', labelValue: 'yes', folder: '' } }, files);
    const c2 = one(custom, 'ConfigMap', 'obs-tally-dashboard-tcp-bytes');
    assert.equal(c2.metadata.labels.dash, 'yes');
    assert.equal(c2.metadata.labels.grafana_dashboard, undefined);
    assert.equal(c2.metadata.annotations, undefined);
    assert.equal(all(render({ dashboards: { enabled: false } }, files), 'ConfigMap').length, 1, 'only the flags ConfigMap');
  });

  it('names: RELEASE-tally, just RELEASE when it says tally, or fullnameOverride', () => {
    assert.equal(one(render({}, {}, 'tally'), 'DaemonSet').metadata.name, 'tally');
    assert.equal(one(render({}, {}, 'tally-prod'), 'DaemonSet').metadata.name, 'tally-prod');
    assert.equal(one(render({ fullnameOverride: 'agent' }), 'DaemonSet').metadata.name, 'agent');
    const configMaps = all(render({ fullnameOverride: 'agent' }), 'ConfigMap').map((o) => o.metadata.name as string);
    assert.deepEqual(configMaps.filter((n) => !n.startsWith('agent-dashboard-')), ['agent-config']);
  });
});
