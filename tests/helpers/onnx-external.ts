/**
 * Rewrites an ONNX model so that its initializers live in external-data files, the layout of
 * large exports (`model.onnx` + `model.onnx_data`, or sharded `model.onnx_data`,
 * `model.onnx_data_1`, …). A minimal protobuf walk: ModelProto.graph (7) → GraphProto.initializer
 * (5) → TensorProto.raw_data (9) moved out, external_data (13) and data_location (14) added.
 */

interface Field {
  readonly number: number;
  readonly wire: number;
  /** The field's payload (for wire type 2: without the length prefix). */
  readonly payload: Uint8Array;
}

function readVarint(bytes: Uint8Array, at: number): { value: number; next: number } {
  let value = 0;
  let scale = 1;
  let index = at;
  for (;;) {
    const byte = bytes[index++]!;
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) return { value, next: index };
    scale *= 128;
  }
}

function varint(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

function parse(bytes: Uint8Array): Field[] {
  const fields: Field[] = [];
  let at = 0;
  while (at < bytes.length) {
    const tag = readVarint(bytes, at);
    const number = Math.floor(tag.value / 8);
    const wire = tag.value % 8;
    at = tag.next;
    if (wire === 0) {
      const end = readVarint(bytes, at).next;
      fields.push({ number, wire, payload: bytes.subarray(at, end) });
      at = end;
    } else if (wire === 1 || wire === 5) {
      const size = wire === 1 ? 8 : 4;
      fields.push({ number, wire, payload: bytes.subarray(at, at + size) });
      at += size;
    } else if (wire === 2) {
      const length = readVarint(bytes, at);
      fields.push({ number, wire, payload: bytes.subarray(length.next, length.next + length.value) });
      at = length.next + length.value;
    } else {
      throw new Error(`unsupported protobuf wire type ${wire}`);
    }
  }
  return fields;
}

function serialize(fields: readonly Field[]): Uint8Array {
  const parts: number[][] = [];
  const chunks: Uint8Array[] = [];
  for (const field of fields) {
    const head = varint(field.number * 8 + field.wire);
    if (field.wire === 2) head.push(...varint(field.payload.length));
    parts.push(head);
    chunks.push(Uint8Array.from(head), field.payload);
  }
  const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

const text = (value: string): Uint8Array => new TextEncoder().encode(value);

function entry(key: string, value: string): Field {
  return { number: 13, wire: 2, payload: serialize([{ number: 1, wire: 2, payload: text(key) }, { number: 2, wire: 2, payload: text(value) }]) };
}

/**
 * Moves every initializer of at least `minBytes` bytes into `shards` external files named
 * `${name}_data`, `${name}_data_1`, … (round-robin by size). Returns the new model bytes and the
 * data files by name.
 */
export function externalizeOnnx(model: Uint8Array, name = 'model.onnx', shards = 1, minBytes = 256): { model: Uint8Array; files: Map<string, Uint8Array> } {
  const names = Array.from({ length: shards }, (_, index) => (index === 0 ? `${name}_data` : `${name}_data_${index}`));
  const buffers: Uint8Array[][] = names.map(() => []);
  const sizes = names.map(() => 0);
  const top = parse(model).map((field) => {
    if (field.number !== 7 || field.wire !== 2) return field;
    const graph = parse(field.payload).map((graphField) => {
      if (graphField.number !== 5 || graphField.wire !== 2) return graphField;
      const tensor = parse(graphField.payload);
      const raw = tensor.find((item) => item.number === 9 && item.wire === 2);
      if (raw === undefined || raw.payload.length < minBytes) return graphField;
      const shard = sizes.indexOf(Math.min(...sizes));
      const offset = sizes[shard]!;
      buffers[shard]!.push(raw.payload);
      sizes[shard]! += raw.payload.length;
      const kept = tensor.filter((item) => item !== raw && item.number !== 13 && item.number !== 14);
      kept.push(entry('location', names[shard]!), entry('offset', String(offset)), entry('length', String(raw.payload.length)));
      kept.push({ number: 14, wire: 0, payload: Uint8Array.from([1]) });
      return { ...graphField, payload: serialize(kept) };
    });
    return { ...field, payload: serialize(graph) };
  });
  const files = new Map<string, Uint8Array>();
  names.forEach((file, index) => {
    const data = new Uint8Array(sizes[index]!);
    let at = 0;
    for (const chunk of buffers[index]!) {
      data.set(chunk, at);
      at += chunk.length;
    }
    if (data.length > 0) files.set(file, data);
  });
  return { model: serialize(top), files };
}
