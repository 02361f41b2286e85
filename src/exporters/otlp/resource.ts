/**
 * Who the metrics come from: service.name tally, its version, the host,
 * and the Kubernetes node when the agent watches one (outside Kubernetes
 * the node name is only the hostname, already in host.name). The SDK's
 * defaults (telemetry.sdk.*) are kept underneath.
 */
import * as os from 'node:os';
import { defaultResource, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { VERSION } from '../../util/version';

export function tallyResource(opts: { kubernetesNode?: string; hostName?: string }): Resource {
  return defaultResource().merge(
    resourceFromAttributes({
      'service.name': 'tally',
      'service.version': VERSION,
      'host.name': opts.hostName ?? os.hostname(),
      ...(opts.kubernetesNode ? { 'k8s.node.name': opts.kubernetesNode } : {}),
    }),
  );
}
