/**
 * diffusers' SD clip_skip takes an earlier CLIP hidden state and passes it through the text
 * model's final LayerNorm. An ONNX export does not expose that LayerNorm on its own, but it
 * exports both its input (the last hidden state before it) and its output (last_hidden_state),
 * so its per-channel gain and bias can be recovered exactly by a two-parameter least-squares fit
 * over the token positions, and then applied to the earlier hidden state.
 */

/** Per-token standardisation (x - mean) / sqrt(var + eps) over the channel axis, in float64. */
function standardise(data: Float32Array, tokens: number, channels: number, eps: number): Float64Array {
  const out = new Float64Array(tokens * channels);
  for (let t = 0; t < tokens; t++) {
    let mean = 0;
    for (let c = 0; c < channels; c++) mean += data[t * channels + c]!;
    mean /= channels;
    let variance = 0;
    for (let c = 0; c < channels; c++) variance += (data[t * channels + c]! - mean) ** 2;
    const inv = 1 / Math.sqrt(variance / channels + eps);
    for (let c = 0; c < channels; c++) out[t * channels + c] = (data[t * channels + c]! - mean) * inv;
  }
  return out;
}

/**
 * Applies the LayerNorm that maps `before` to `after` (both [tokens, channels]) to `target`.
 * @param eps the LayerNorm epsilon (CLIP: 1e-5)
 */
export function applyRecoveredLayerNorm(
  before: Float32Array,
  after: Float32Array,
  target: Float32Array,
  tokens: number,
  channels: number,
  eps = 1e-5,
): Float32Array {
  const z = standardise(before, tokens, channels, eps);
  const zt = standardise(target, tokens, channels, eps);
  const out = new Float32Array(target.length);
  for (let c = 0; c < channels; c++) {
    let sz = 0, sy = 0, szz = 0, szy = 0;
    for (let t = 0; t < tokens; t++) {
      const zi = z[t * channels + c]!;
      const yi = after[t * channels + c]!;
      sz += zi; sy += yi; szz += zi * zi; szy += zi * yi;
    }
    const denominator = tokens * szz - sz * sz;
    const gain = denominator === 0 ? 1 : (tokens * szy - sz * sy) / denominator;
    const bias = (sy - gain * sz) / tokens;
    for (let t = 0; t < tokens; t++) out[t * channels + c] = zt[t * channels + c]! * gain + bias;
  }
  return out;
}
