/**
 * The little of the protobuf wire format the exposition needs: varints,
 * zigzag, doubles, strings and nested messages. Messages are built bottom-up
 * into byte arrays, so a nested message's length is known when written.
 */
const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;

/** Varints of the numbers below 128 (tags, small lengths): made once. */
const SMALL_VARINTS = Array.from({ length: 128 }, (_, i) => Buffer.from([i]));

/** A non-negative safe integer as a varint. */
export function varintBytes(v: number): Buffer {
  if (v < 128) return SMALL_VARINTS[v];
  const bytes: number[] = [];
  while (v >= 0x80) {
    bytes.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

export class ProtoWriter {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  /** Bytes as they are, e.g. a message after its own length prefix. */
  raw(b: Buffer): void {
    this.push(b);
  }

  private push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
  }

  private tag(field: number, wire: number): void {
    this.rawVarint((field << 3) | wire);
  }

  /** A varint; numbers (exact below 2^53, as lengths and counts are) without BigInt arithmetic. */
  rawVarint(v: bigint | number): void {
    if (typeof v === 'number' && v >= 0 && v <= Number.MAX_SAFE_INTEGER) {
      this.push(varintBytes(v));
      return;
    }
    const bytes: number[] = [];
    let x = BigInt.asUintN(64, BigInt(v));
    while (x >= 0x80n) {
      bytes.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    bytes.push(Number(x));
    this.push(Buffer.from(bytes));
  }

  uint64(field: number, v: number | bigint): void {
    this.tag(field, WIRE_VARINT);
    this.rawVarint(v);
  }

  /** sint32/sint64: zigzag, so small negative numbers stay short. */
  sint(field: number, v: number): void {
    this.tag(field, WIRE_VARINT);
    const b = BigInt(v);
    this.rawVarint(b >= 0n ? b << 1n : ((-b) << 1n) - 1n);
  }

  double(field: number, v: number): void {
    this.tag(field, WIRE_I64);
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    this.push(b);
  }

  string(field: number, v: string): void {
    this.bytes(field, Buffer.from(v, 'utf8'));
  }

  bytes(field: number, v: Buffer): void {
    this.tag(field, WIRE_LEN);
    this.rawVarint(v.length);
    this.push(v);
  }

  message(field: number, build: (w: ProtoWriter) => void): void {
    const w = new ProtoWriter();
    build(w);
    this.bytes(field, w.finish());
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}
