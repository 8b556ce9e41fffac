// The classifier helper: owns the bundle (manifest, labels, model), the timing, and the two ways
// of answering: on the device with LiteRT.js, or by the officenet HTTP server (POST /classify).
//
//   const manifest = await loadManifest('bundle/');
//   const model = await OnDeviceModel.load(manifest, 'bundle/', 'litert/wasm/');
//   const result = await model.classifyRGBA(imageData.data, width, height);
//   // {mode: 'on-device', top: [{index, label, score}, ...], abstained, ms, input, raw}
//   const answer = await classifyOnServer('http://192.168.1.20:8000', blob, manifest);

import {loadLiteRt, loadAndCompile, Tensor} from './litert/core.js';
import {preprocess, dequantize} from './preprocess.js';

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

export class OnDeviceModel {
  constructor(manifest, compiled) {
    this.manifest = manifest;
    this.compiled = compiled;
  }

  static async load(manifest, bundleBase, wasmBase) {
    await loadLiteRt(new URL(wasmBase, location.href).href);
    const modelUrl = new URL(manifest.model.file, new URL(bundleBase, location.href)).href;
    const compiled = await loadAndCompile(modelUrl, {accelerator: 'wasm'});
    return new OnDeviceModel(manifest, compiled);
  }

  // The model on one input tensor: its raw output (a copy) and the time it took, readback included.
  async run(inputData) {
    const start = performance.now();
    const input = new Tensor(inputData, this.manifest.input.shape);
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
