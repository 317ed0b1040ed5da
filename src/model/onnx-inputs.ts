/**
 * The element types of an ONNX model's graph inputs, read from the file without loading it:
 * a minimal protobuf walk that seeks over everything else (weights included), so a 2 GB UNet
 * costs a few small reads. Used to tell a float16 export from a float32 one in model lists.
 *
 * ModelProto.graph = field 7; GraphProto.input = field 11 (ValueInfoProto: name = 1, type = 2);
 * TypeProto.tensor_type = 1; TypeProto.Tensor.elem_type = 1 (onnx.proto3).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** ONNX TensorProto.DataType values of interest. */
export const ONNX_FLOAT = 1;
export const ONNX_FLOAT16 = 10;

class Reader {
  private buffer = new Uint8Array(0);
  private bufferStart = 0;

  constructor(
    private readonly fd: number,
    readonly size: number,
  ) {}

  byte(position: number): number {
    if (position < this.bufferStart || position >= this.bufferStart + this.buffer.length) {
      const length = Math.min(64 * 1024, this.size - position);
      if (length <= 0) throw new Error('unexpected end of the ONNX file');
      this.buffer = new Uint8Array(length);
      readSync(this.fd, this.buffer, 0, length, position);
      this.bufferStart = position;
    }
    return this.buffer[position - this.bufferStart]!;
  }

  bytes(position: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    readSync(this.fd, out, 0, length, position);
    return out;
  }

  /** A varint at `position`: its value and the position after it. */
  varint(position: number): { value: number; next: number } {
    let value = 0;
    let scale = 1;
    for (let at = position; at < position + 10; at++) {
      const byte = this.byte(at);
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return { value, next: at + 1 };
      scale *= 128;
    }
    throw new Error('a malformed varint in the ONNX file');
  }
}

interface Field {
  readonly number: number;
  readonly wire: number;
  /** Start and end of a length-delimited field's bytes; the varint value otherwise. */
  readonly start: number;
  readonly end: number;
  readonly value: number;
}

/** The fields of the message between `start` and `end`, seeking over their contents. */
function* fields(reader: Reader, start: number, end: number): Generator<Field> {
  let at = start;
  while (at < end) {
    const tag = reader.varint(at);
    const number = Math.floor(tag.value / 8);
    const wire = tag.value % 8;
    if (wire === 0) {
      const value = reader.varint(tag.next);
      yield { number, wire, start: tag.next, end: value.next, value: value.value };
      at = value.next;
    } else if (wire === 1) {
      at = tag.next + 8;
    } else if (wire === 5) {
      at = tag.next + 4;
    } else if (wire === 2) {
      const length = reader.varint(tag.next);
      const fieldEnd = length.next + length.value;
      if (fieldEnd > end) throw new Error('a field runs past the end of its ONNX message');
      yield { number, wire, start: length.next, end: fieldEnd, value: length.value };
      at = fieldEnd;
    } else {
      throw new Error(`unsupported protobuf wire type ${wire} in the ONNX file`);
    }
  }
}

function first(reader: Reader, start: number, end: number, number: number, wire: number): Field | undefined {
  for (const field of fields(reader, start, end)) if (field.number === number && field.wire === wire) return field;
  return undefined;
}

/** Graph input name → ONNX element type (1 float, 10 float16, …; 0 when not a tensor). Throws on a file that is no ONNX model. */
export function onnxInputTypes(path: string): Map<string, number> {
  const fd = openSync(path, 'r');
  try {
    const reader = new Reader(fd, fstatSync(fd).size);
    const graph = first(reader, 0, reader.size, 7, 2);
    if (graph === undefined) throw new Error(`${path} has no ONNX graph`);
    const types = new Map<string, number>();
    for (const input of fields(reader, graph.start, graph.end)) {
      if (input.number !== 11 || input.wire !== 2) continue;
      const name = first(reader, input.start, input.end, 1, 2);
      if (name === undefined) continue;
      const type = first(reader, input.start, input.end, 2, 2);
      const tensor = type === undefined ? undefined : first(reader, type.start, type.end, 1, 2);
      const elem = tensor === undefined ? undefined : first(reader, tensor.start, tensor.end, 1, 0);
      types.set(new TextDecoder().decode(reader.bytes(name.start, name.end - name.start)), elem?.value ?? 0);
    }
    return types;
  } finally {
    closeSync(fd);
  }
}
