// The classifier helper: owns the bundle (manifest, labels, model), the timing, and the two ways
// of answering: on the device with LiteRT.js, or by the officenet HTTP server (POST /classify).
//
//   const manifest = await loadManifest('bundle/');
//   const model = await OnDeviceModel.load(manifest, 'bundle/', 'litert/wasm/');   // build: 'auto'
//   const result = await model.classifyRGBA(imageData.data, width, height);
//   // {mode: 'on-device', top: [{index, label, score}, ...], abstained, ms, input, raw}
//   const answer = await classifyOnServer('http://192.168.1.20:8000', blob, manifest);
//
// LiteRT.js is imported on first use, never at the top of a module: a WebView that cannot load it
// (no import maps before WebView 89, no WebAssembly SIMD before 91, a missing file) must still run
// the page, which then says so and answers with the server.

import {preprocess, dequantize} from './preprocess.js';

// LiteRT.js's WebAssembly builds, by the name the page (?wasm=) and the benchmark use. 'auto' lets
// LiteRT.js pick relaxed SIMD where the WebView has it, else the plain-SIMD (compat) build, and
// takes the threaded one only in a cross-origin-isolated page (wasm threads need
// SharedArrayBuffer) that ships it.
export const WASM_BUILDS = {
  relaxed: 'litert_wasm_internal.js',
  compat: 'litert_wasm_compat_internal.js',
  threaded: 'litert_wasm_threaded_internal.js',
};

export async function loadManifest(base) {
  const response = await fetch(new URL('manifest.json', new URL(base, location.href)));
  if (!response.ok) throw new Error(`bundle manifest: HTTP ${response.status}`);
  return (await import('./seal.js')).sealedManifest(response, base);  // refuses an edited manifest
}

// Best k of the dequantized scores; ties keep the lower index first (a stable sort, as numpy's).
export function topK(scores, manifest, k = 3) {
  return manifest.classes
      .map((c) => ({index: c.index, label: c.label, score: scores[c.index]}))
      .sort((a, b) => b.score - a.score || a.index - b.index)
      .slice(0, k);
}

// The manifest's "not an office object" rule (issue 8) exactly as bundle/abstain.py applies it:
// the rule's score of the dequantized outputs under its threshold. "max": the best score (also a
// rule without "score"); "office_mass": their sum, 1 - p(other) for a model whose hidden "other"
// output was cut off at export. Outputs are multiples of 1/256, so the sum is exact.
const SCORES = {
  max: (scores) => Math.max(...scores),
  office_mass: (scores) => scores.reduce((a, b) => a + b, 0),
};

export function abstains(scores, manifest) {
  const rule = manifest.abstain;
  if (!rule) return false;
  const score = SCORES[rule.score || 'max'];
  if (!score) throw new Error(`manifest abstain score ${rule.score} is not supported`);
  return score(scores) < rule.threshold;
}

async function shipped(url) {
  try {
    return (await fetch(url, {method: 'HEAD'})).ok;
  } catch {
    return false;
  }
}

export class OnDeviceModel {
  constructor(manifest, compiled, Tensor) {
    this.manifest = manifest;
    this.compiled = compiled;
    this.Tensor = Tensor;
  }

  // Loads the runtime (build: 'auto' or a WASM_BUILDS name) and compiles the model; throws, with
  // the reason, when this browser cannot run it. this.build says which build runs.
  static async load(manifest, bundleBase, wasmBase, build = 'auto') {
    let litert;
    try {
      litert = await import('./litert/core.js');
    } catch (e) {
      throw new Error(`the LiteRT.js runtime does not load in this WebView (${e.message})`);
    }
    if (typeof WebAssembly !== 'object') throw new Error('this WebView has no WebAssembly');
    const dir = new URL(wasmBase, location.href).href;
    if (build !== 'auto' && !WASM_BUILDS[build]) throw new Error(`unknown LiteRT.js build ${build}`);
    let threads = build === 'threaded';
    if (build === 'auto' && self.crossOriginIsolated && await shipped(dir + WASM_BUILDS.threaded)) {
      try {  // LiteRT.js picks the threaded file for a directory path plus {threads: true}
        await litert.loadLiteRt(dir, {threads: true});
        threads = true;
      } catch (e) {
        console.warn(`threaded LiteRT.js unavailable, one thread instead: ${e.message}`);
      }
    }
    if (threads && build === 'threaded') await litert.loadLiteRt(dir, {threads: true});
    else if (!threads) await litert.loadLiteRt(build === 'auto' ? dir : dir + WASM_BUILDS[build]);
    const modelUrl = new URL(manifest.model.file, new URL(bundleBase, location.href)).href;
    const compiled = await litert.loadAndCompile(modelUrl, {accelerator: 'wasm'});
    const model = new OnDeviceModel(manifest, compiled, litert.Tensor);
    model.build = threads ? 'threaded' : build !== 'auto' ? build
        : await litert.supportsFeature('relaxedSimd') ? 'relaxed' : 'compat';
    return model;
  }

  // The model on one input tensor: its raw output (a copy) and the time it took, readback included.
  async run(inputData) {
    const start = performance.now();
    const input = new this.Tensor(inputData, this.manifest.input.shape);
    let outputs;
    try {
      outputs = await this.compiled.run(input);
    } finally {
      input.delete();
    }
    const raw = outputs[0].toTypedArray().slice();
    for (const t of outputs) t.delete();
    return {raw, ms: performance.now() - start};
  }

  async classifyRGBA(rgba, width, height) {
    const t0 = performance.now();
    const input = preprocess(rgba, width, height, this.manifest.input);
    const preprocessMs = performance.now() - t0;
    const {raw, ms} = await this.run(input);
    const scores = dequantize(raw, this.manifest.output.quantization);
    return {mode: 'on-device', top: topK(scores, this.manifest), abstained: abstains(scores, this.manifest),
            ms, preprocessMs, input, raw, scores};
  }
}

// The fallback: the server decodes and preprocesses the image itself (bundle/ in Python).
export async function classifyOnServer(serverUrl, blob, filename = 'frame.png') {
  const form = new FormData();
  form.append('file', blob, filename);
  const start = performance.now();
  let response;
  try {
    response = await fetch(new URL('classify?top_k=3', serverUrl.replace(/\/?$/, '/')), {method: 'POST', body: form});
  } catch (e) {  // the browser tells no more than this for network and CORS failures
    throw new Error(`cannot reach the server at ${serverUrl} (${e.message}): is it running with ` +
                    '--host 0.0.0.0, and is this phone on its network?');
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.error?.message ?? `server answered HTTP ${response.status}`);
  }
  return {mode: 'server', top: body.predictions.map((p) => ({label: p.label, score: p.score})),
          abstained: body.abstained === true, ms: performance.now() - start,
          serverMs: body.timing_ms?.total};
}
