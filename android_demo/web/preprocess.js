// The bundle's reference preprocessing (bundle/preprocess.py) in JavaScript, bit for bit.
//
//   import {preprocess} from './preprocess.js';
//   const input = preprocess(imageData.data, width, height, manifest.input);  // Uint8Array S*S*3
//
// 1. centre crop: side = round(min(W, H) * crop_fraction) (Python's round: half to even), at
//    ((W - side) // 2, (H - side) // 2);
// 2. resize the square to S x S the way Pillow's BILINEAR does (src/libImaging/Resample.c):
//    a triangle filter widened by the scale factor when shrinking, coefficients normalised then
//    turned into 22-bit fixed point, a horizontal pass then a vertical pass, each rounding by
//    adding 1 << 21 and clipping to 0..255. Same integers in, same integers out;
// 3. quantize as bundle.preprocess.quantize does (np.rint is half to even).
// The source is RGBA (canvas ImageData); alpha is ignored, the caller composites it.

const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);

export function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function cropBox(width, height, cropFraction) {
  const side = Math.max(1, roundHalfEven(Math.min(width, height) * cropFraction));
  const left = Math.floor((width - side) / 2);
  const top = Math.floor((height - side) / 2);
  return {left, top, side};
}

function bilinear(x) {
  x = Math.abs(x);
  return x < 1 ? 1 - x : 0;
}

// Resample.c precompute_coeffs + normalize_coeffs_8bpc, for BILINEAR (support 1) and in0 = 0.
const coeffCache = new Map();
function coefficients(inSize, outSize) {
  const key = `${inSize}:${outSize}`;
  if (coeffCache.has(key)) return coeffCache.get(key);
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const ss = 1.0 / filterscale;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      w[x] = bilinear((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0.0 ? w[x] / ww : w[x];
      kk[xx * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * (1 << PRECISION_BITS))
                                 : Math.trunc(0.5 + k * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  const c = {ksize, bounds, kk};
  coeffCache.set(key, c);
  return c;
}

function clip8(ss) {
  const v = ss >> PRECISION_BITS;  // sums stay within int32, as in C
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

// Square `side` at (left, top) of an RGBA image -> size x size RGB (Uint8Array), like Pillow.
export function resizeBilinear(rgba, width, left, top, side, size) {
  const out = new Uint8Array(size * size * 3);
  if (side === size) {  // preprocess() skips the resize when the crop already has the size
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const s = ((top + y) * width + left + x) * 4, d = (y * size + x) * 3;
        out[d] = rgba[s]; out[d + 1] = rgba[s + 1]; out[d + 2] = rgba[s + 2];
      }
    }
    return out;
  }
  const h = coefficients(side, size);
  const v = coefficients(side, size);
  // Only the rows the vertical pass reads go through the horizontal pass (as in Resample.c).
  const yFirst = v.bounds[0];
  const yLast = v.bounds[(size - 1) * 2] + v.bounds[(size - 1) * 2 + 1];
  const tmp = new Uint8Array((yLast - yFirst) * size * 3);
  for (let y = yFirst; y < yLast; y++) {
    const row = (top + y) * width;
    for (let xx = 0; xx < size; xx++) {
      const xmin = h.bounds[xx * 2], xmax = h.bounds[xx * 2 + 1], k0 = xx * h.ksize;
      let s0 = HALF, s1 = HALF, s2 = HALF;
      for (let x = 0; x < xmax; x++) {
        const k = h.kk[k0 + x], p = (row + left + xmin + x) * 4;
        s0 += rgba[p] * k; s1 += rgba[p + 1] * k; s2 += rgba[p + 2] * k;
      }
      const d = ((y - yFirst) * size + xx) * 3;
      tmp[d] = clip8(s0); tmp[d + 1] = clip8(s1); tmp[d + 2] = clip8(s2);
    }
  }
  for (let yy = 0; yy < size; yy++) {
    const ymin = v.bounds[yy * 2] - yFirst, ymax = v.bounds[yy * 2 + 1], k0 = yy * v.ksize;
    for (let xx = 0; xx < size; xx++) {
      let s0 = HALF, s1 = HALF, s2 = HALF;
      for (let y = 0; y < ymax; y++) {
        const k = v.kk[k0 + y], p = ((ymin + y) * size + xx) * 3;
        s0 += tmp[p] * k; s1 += tmp[p + 1] * k; s2 += tmp[p + 2] * k;
      }
      const d = (yy * size + xx) * 3;
      out[d] = clip8(s0); out[d + 1] = clip8(s1); out[d + 2] = clip8(s2);
    }
  }
  return out;
}

// Raw 0..255 pixels -> the model's input dtype, as bundle.preprocess.quantize.
export function quantize(pixels, dtype, {scale, zero_point: zeroPoint}) {
  if (dtype === 'float32') return Float32Array.from(pixels);
  if (dtype !== 'uint8') throw new Error(`input dtype ${dtype} is not supported by the page`);
  if (scale === 1.0 && zeroPoint === 0) return pixels;
  const q = new Uint8Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) {
    const v = roundHalfEven(pixels[i] / scale + zeroPoint);
    q[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return q;
}

// RGBA pixels of a whole picture -> the model's input tensor data, per the manifest's `input`.
export function preprocess(rgba, width, height, input) {
  const spec = input.preprocess;
  if ((spec.resize ?? 'bilinear') !== 'bilinear' || (spec.channel_order ?? 'RGB') !== 'RGB') {
    throw new Error(`preprocess ${spec.resize}/${spec.channel_order} is not implemented by the page`);
  }
  const {left, top, side} = cropBox(width, height, spec.crop_fraction ?? 1.0);
  const pixels = resizeBilinear(rgba, width, left, top, side, spec.size);
  return quantize(pixels, input.dtype, input.quantization);
}

// A quantized output -> float32 scores, as bundle.preprocess.dequantize (float32 arithmetic).
export function dequantize(values, {scale, zero_point: zeroPoint}) {
  if (values instanceof Float32Array) return values;
  const s = Math.fround(scale), z = Math.fround(zeroPoint);
  return Float32Array.from(values, (v) => Math.fround(Math.fround(v - z) * s));
}
