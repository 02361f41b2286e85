/** Every cgroup path shape the kubelet and the runtimes produce, table-driven. */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseKubeletCgroup } from '../src/labels/kubelet-cgroups';

const UID = '8f2d41a6-3c1b-4e7a-9d0e-5b6c7a8f9e01';
const SD_UID = UID.replace(/-/g, '_');
const ID = 'a3f5c0d1e2b4a6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a2b4c6';

const table: Array<[string, string, object | undefined]> = [
  ['systemd, containerd, burstable',
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${SD_UID}.slice/cri-containerd-${ID}.scope`,
    { podUid: UID, qos: 'burstable', containerId: ID, runtime: 'containerd' }],
  ['systemd, containerd, guaranteed (no qos slice)',
    `/kubepods.slice/kubepods-pod${SD_UID}.slice/cri-containerd-${ID}.scope`,
    { podUid: UID, qos: 'guaranteed', containerId: ID, runtime: 'containerd' }],
  ['systemd, CRI-O, besteffort',
    `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${SD_UID}.slice/crio-${ID}.scope`,
    { podUid: UID, qos: 'besteffort', containerId: ID, runtime: 'cri-o' }],
  ['systemd, Docker',
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${SD_UID}.slice/docker-${ID}.scope`,
    { podUid: UID, qos: 'burstable', containerId: ID, runtime: 'docker' }],
  ['systemd, a process in a sub-cgroup of the container',
    `/kubepods.slice/kubepods-pod${SD_UID}.slice/cri-containerd-${ID}.scope/init.scope`,
    { podUid: UID, qos: 'guaranteed', containerId: ID, runtime: 'containerd' }],
  ['systemd, CRI-O conmon is not a container',
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${SD_UID}.slice/crio-conmon-${ID}.scope`,
    { podUid: UID, qos: 'burstable' }],
  ['systemd, the pod cgroup itself',
    `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${SD_UID}.slice`,
    { podUid: UID, qos: 'besteffort' }],
  ['systemd, a static pod named by its config hash',
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f3c9a1b2d4e6f8091a2b3c4d5e6f708.slice/cri-containerd-${ID}.scope`,
    { podUid: '0f3c9a1b2d4e6f8091a2b3c4d5e6f708', qos: 'burstable', containerId: ID, runtime: 'containerd' }],
  ['cgroupfs, burstable',
    `/kubepods/burstable/pod${UID}/${ID}`,
    { podUid: UID, qos: 'burstable', containerId: ID }],
  ['cgroupfs, guaranteed',
    `/kubepods/pod${UID}/${ID}`,
    { podUid: UID, qos: 'guaranteed', containerId: ID }],
  ['cgroupfs, besteffort, nested under a kind node',
    `/kubelet/kubepods/besteffort/pod${UID}/${ID}`,
    { podUid: UID, qos: 'besteffort', containerId: ID }],
  ['hybrid mode: a v1 hierarchy path has the same shape',
    `/kubepods/burstable/pod${UID}/${ID}`,
    { podUid: UID, qos: 'burstable', containerId: ID }],
  ['containerd nested in its own service (kind, k3s)',
    `/system.slice/containerd.service/kubepods-besteffort-pod${SD_UID}.slice:cri-containerd:${ID}`,
    { podUid: UID, qos: 'besteffort', containerId: ID, runtime: 'containerd' }],
  ['uppercase UID is normalised',
    `/kubepods/pod${UID.toUpperCase()}/${ID}`,
    { podUid: UID, qos: 'guaranteed', containerId: ID }],
  ['a systemd service is not a pod', '/system.slice/nginx.service', undefined],
  ['plain Docker outside Kubernetes', `/system.slice/docker-${ID}.scope`, undefined],
  ['a pod-like name outside kubepods', `/somewhere/pod${UID}/${ID}`, undefined],
  ['the root', '/', undefined],
];

describe('parseKubeletCgroup', () => {
  for (const [name, path, want] of table) {
    it(name, () => assert.deepEqual(parseKubeletCgroup(path), want));
  }
});
