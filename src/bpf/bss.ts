import { NativeBpfObject, NativeMap } from '../native/addon';

/** The object's .bss map (its zero-initialised globals), if it has one. */
export function bssMap(obj: NativeBpfObject): NativeMap | undefined {
  return obj.maps().find((m) => m.internal && m.name.endsWith('.bss'));
}
