/** Renders the registry in whichever format a scrape negotiated. */
import { Registry } from 'prom-client';
import { gather } from './model';
import { encodeTextBuffer } from './text-format';
import { encodeProtobuf } from './protobuf-format';
import { Format } from './negotiate';

export { CONTENT_TYPES, negotiateFormat, wantsGzip, Format } from './negotiate';
export { NativeHistogram } from './model';

export async function render(registry: Registry, format: Format): Promise<Buffer> {
  const families = await gather(registry);
  return format === 'protobuf' ? encodeProtobuf(families) : encodeTextBuffer(families, format);
}
