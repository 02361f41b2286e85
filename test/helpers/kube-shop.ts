/**
 * The Kubernetes scene several suites share: in one namespace, a
 * Deployment's pod web-7d4b9c8f6-x2x9q (systemd cgroup driver, containerd)
 * and a StatefulSet's pod db-0 (cgroupfs driver), served by a fake API
 * server, each with a container cgroup of the shape the kubelet makes.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { FakeKubeApi } from './fake-kube-api';
import { TestCgroup } from './cgroup';

export const containerId = (): string => randomBytes(32).toString('hex');

export interface ShopPod {
  uid: string;
  name: string;
  container: string;
  /** The container's cgroup. */
  cg: TestCgroup;
}

export class KubeShop {
  /** Every cgroup made, parents first: destroy() removes them in reverse. */
  readonly made: TestCgroup[] = [];
  web!: ShopPod;
  db!: ShopPod;

  private constructor(readonly api: FakeKubeApi) {}

  /** Starts the API server and makes both pods' cgroups under a test cgroup named tag. */
  static async start(tag: string, node: string, namespace = 'shop'): Promise<KubeShop> {
    const shop = new KubeShop(await new FakeKubeApi().start());
    const web = { uid: randomUUID(), name: 'web-7d4b9c8f6-x2x9q', container: containerId() };
    const db = { uid: randomUUID(), name: 'db-0', container: containerId() };
    const api = shop.api;
    api.addOwned('replicasets', namespace, 'web-7d4b9c8f6', { kind: 'Deployment', name: 'web' });
    api.addPod({ uid: web.uid, namespace, name: web.name, node, owner: { kind: 'ReplicaSet', name: 'web-7d4b9c8f6' }, labels: { 'pod-template-hash': '7d4b9c8f6' }, containers: [{ name: 'app', id: web.container }] });
    api.addPod({ uid: db.uid, namespace, name: db.name, node, owner: { kind: 'StatefulSet', name: 'db' }, containers: [{ name: 'postgres', id: db.container }] });
    const root = TestCgroup.create(tag);
    shop.made.push(root);
    shop.web = { ...web, cg: shop.nest(root, ['kubepods.slice', 'kubepods-burstable.slice', `kubepods-burstable-pod${web.uid.replace(/-/g, '_')}.slice`, `cri-containerd-${web.container}.scope`]) };
    shop.db = { ...db, cg: shop.nest(root, ['kubepods', 'besteffort', `pod${db.uid}`, db.container]) };
    return shop;
  }

  /** Creates root/a/b/c… and remembers each level for teardown. */
  nest(root: TestCgroup, names: string[]): TestCgroup {
    let cg = root;
    for (const n of names) this.made.push((cg = cg.child(n)));
    return cg;
  }

  /** Removes every cgroup made, children first; whatever runs in them dies. */
  destroyCgroups(): void {
    for (const cg of this.made.splice(0).reverse()) cg.destroy();
  }

}
