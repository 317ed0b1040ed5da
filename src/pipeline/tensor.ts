/** A minimal float32 tensor: data in row-major order and its dimensions. */
export interface Tensor32 {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

/** Number of elements a shape holds. */
export function sizeOf(dims: readonly number[]): number {
  return dims.reduce((product, dim) => product * dim, 1);
}

/** Concatenates tensors that share all but the first dimension along the first one. */
export function concatBatch(parts: readonly Tensor32[]): Tensor32 {
  const first = parts[0];
  if (first === undefined) throw new Error('concatBatch needs at least one tensor');
  const rest = first.dims.slice(1);
  let rows = 0;
  let length = 0;
  for (const part of parts) {
    if (part.dims.length !== first.dims.length || part.dims.slice(1).some((dim, index) => dim !== rest[index])) {
      throw new Error(`concatBatch: shape [${part.dims.join(',')}] does not match [${first.dims.join(',')}]`);
    }
    rows += part.dims[0] ?? 1;
    length += part.data.length;
  }
  const data = new Float32Array(length);
  let offset = 0;
  for (const part of parts) {
    data.set(part.data, offset);
    offset += part.data.length;
  }
  return { data, dims: [rows, ...rest] };
}

/** Row `index` of a batched tensor, keeping a leading batch dimension of 1 (a view, not a copy). */
export function batchRow(tensor: Tensor32, index: number): Tensor32 {
  const rowLength = tensor.data.length / (tensor.dims[0] ?? 1);
  return {
    data: tensor.data.subarray(index * rowLength, (index + 1) * rowLength),
    dims: [1, ...tensor.dims.slice(1)],
  };
}
