/**
 * The boundary between an EndpointSlice as the API server sends it and what
 * the peer table keeps (cluster-peers.ts), in the manner of pod-object.ts:
 * every field type-checked, nothing past here touches the raw object.
 *
 * A slice without uid, name or namespace is unusable. Everything else is read
 * leniently: an endpoint or address of the wrong shape is left out, as if the
 * server had not sent it. FQDN slices (addressType FQDN) have no address to
 * resolve and are read as empty.
 */
import { isMapping, readObjectMeta, text, UnusableObject } from '../labels/kube/pod-object';
import { EndpointSliceRecord, SERVICE_NAME_LABEL } from './cluster-peers';
import { parseCidr } from '../policy/ip';

export function readEndpointSlice(obj: unknown): EndpointSliceRecord | UnusableObject {
  const meta = readObjectMeta(obj);
  if (typeof meta === 'string') return meta;
  const { o, md, uid, name, namespace } = meta;
  const labels = isMapping(md.labels) ? md.labels : {};
  const addressType = o.addressType === 'IPv6' ? 'IPv6' : 'IPv4';
  const family = addressType === 'IPv6' ? 6 : 4;
  const slice: EndpointSliceRecord = { uid, name, namespace, service: text(labels[SERVICE_NAME_LABEL]) ?? '', addressType, endpoints: [] };
  const rv = text(md.resourceVersion);
  if (rv) slice.resourceVersion = rv;
  if (o.addressType !== 'IPv4' && o.addressType !== 'IPv6') return slice;
  for (const e of Array.isArray(o.endpoints) ? o.endpoints : []) {
    if (!isMapping(e) || !Array.isArray(e.addresses)) continue;
    // Only addresses of the slice's family: the kernel's table is keyed by them, and a bad one must not reach it.
    const addresses = e.addresses.filter((a): a is string => {
      if (typeof a !== 'string') return false;
      const r = parseCidr(a);
      return r.ok && r.cidr.family === family && r.cidr.prefixLen === (family === 4 ? 32 : 128);
    });
    if (addresses.length === 0) continue;
    const endpoint: EndpointSliceRecord['endpoints'][number] = { addresses };
    const nodeName = text(e.nodeName);
    if (nodeName) endpoint.nodeName = nodeName;
    const zone = text(e.zone);
    if (zone) endpoint.zone = zone;
    slice.endpoints.push(endpoint);
  }
  return slice;
}
