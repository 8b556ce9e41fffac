// The camera page: frames (or a picked photo) -> the bundle's preprocessing -> the model -> top-3.
//
// Everything about the model comes from bundle/manifest.json at run time. On-device inference
// (LiteRT.js) is the default; the officenet HTTP server answers instead when on-device
// inference is turned off in the settings (or ?ondevice=0) or cannot start.
// URL parameters (handy for tests and desktop browsers): ondevice=0|1, server=URL, camera=0,
// wasm=auto|relaxed|compat|threaded (the LiteRT.js build, see classifier.js).
// window.officenet exposes the state and the preprocessing for tests and benchmarks.
//
// The camera is given back while the page is hidden and asked for again when it is shown, and a
// stream that ends (another app took the camera, the permission was revoked) is restarted.

import {OnDeviceModel, classifyOnServer, loadManifest} from './classifier.js';
import {cropBox, preprocess} from './preprocess.js';

const BUNDLE = 'bundle/';
const WASM = 'litert/wasm/';
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const settings = {
  onDevice: (params.get('ondevice') ?? localStorage.getItem('officenet.ondevice') ?? '1') !== '0',
  server: params.get('server') ?? localStorage.getItem('officenet.server') ?? '',
};

// state.last: the latest result, with the frame (ImageData) it was computed from.
const state = {manifest: null, model: null, paused: false, source: 'camera', last: null};
// camera.starts counts the streams started, so a test can see a restart.
const camera = {wanted: params.get('camera') !== '0', stream: null, starting: null, retryMs: 1000, starts: 0};
const officenet = {state, camera, decodePhoto, classifyPhoto,
                   preprocess: (rgba, w, h, input = state.manifest.input) => preprocess(rgba, w, h, input)};
window.officenet = officenet;

function setStatus(text) { $('status').textContent = text; }

// Outlines, on the picture shown, the centre square the model is given.
function placeGuide(frame) {
  const shown = state.source === 'photo' ? $('photo') : $('video');
  const guide = $('guide');
  const box = shown.getBoundingClientRect(), view = $('view').getBoundingClientRect();
  guide.hidden = !frame || !box.width;
  if (guide.hidden) return;
  const scale = Math.min(box.width / frame.width, box.height / frame.height);
  const {left, top, side} = cropBox(frame.width, frame.height, state.manifest.input.preprocess.crop_fraction ?? 1);
  const x0 = box.left - view.left + (box.width - frame.width * scale) / 2;
  const y0 = box.top - view.top + (box.height - frame.height * scale) / 2;
  Object.assign(guide.style, {left: `${x0 + left * scale}px`, top: `${y0 + top * scale}px`,
                              width: `${side * scale}px`, height: `${side * scale}px`});
}

function show(result) {
  state.last = result;
  placeGuide(result.frame);
  const top = $('top');
  top.replaceChildren();
  top.classList.toggle('abstained', result.abstained);
  if (result.abstained) setStatus('not sure this is an office object');
  for (const t of result.top) {
    const li = document.createElement('li');
    const label = document.createElement('span');
    label.className = 'label';
    label.textContent = t.label;
    const score = document.createElement('span');
    score.className = 'score';
    score.textContent = `${(100 * t.score).toFixed(1)}%`;
    li.append(label, score);
    top.append(li);
  }
  $('timing').textContent = result.mode === 'on-device'
      ? `on this phone: ${result.ms.toFixed(1)} ms inference, ${result.preprocessMs.toFixed(1)} ms preprocessing`
      : `server: ${result.ms.toFixed(0)} ms round trip (${(result.serverMs ?? 0).toFixed(1)} ms in the server)`;
  if (!result.abstained) setStatus(`${result.source} · ${result.mode}`);
}

// RGBA pixels of a whole picture drawn on the page's canvas (white under transparent parts,
// as bundle.images does); returns ImageData.
function drawToCanvas(source, width, height) {
  const canvas = $('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(source, 0, 0, width, height);
  return ctx.getImageData(0, 0, width, height);
}

function canvasBlob() {
  return new Promise((resolve) => $('canvas').toBlob(resolve, 'image/png'));
}

// A photo file -> upright pixels: EXIF orientation applied like bundle.images (Pillow's
// exif_transpose), no colour-profile conversion (Pillow does none).
async function decodePhoto(blob) {
  const options = {imageOrientation: 'from-image', colorSpaceConversion: 'none', premultiplyAlpha: 'none'};
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, options);
  } catch (e) {
    // Older WebViews know only 'none' and 'flipY' here (a TypeError); their default is then used.
    if (!(e instanceof TypeError)) throw e;
    delete options.imageOrientation;
    bitmap = await createImageBitmap(blob, options);
  }
  try {
    return drawToCanvas(bitmap, bitmap.width, bitmap.height);
  } finally {
    bitmap.close();
  }
}

async function classify(frame, blobForServer) {
  if (state.model) return state.model.classifyRGBA(frame.data, frame.width, frame.height);
  if (!settings.server) throw new Error('on-device inference is off and no server is set (see settings)');
  return classifyOnServer(settings.server, await blobForServer());
}

async function classifyPhoto(file) {
  state.source = 'photo';
  const photo = $('photo');
  URL.revokeObjectURL(photo.src);
  photo.src = URL.createObjectURL(file);
  photo.hidden = false;
  $('video').hidden = true;
  const frame = await decodePhoto(file);
  // The server gets the original file, so it decodes and rotates it itself.
  const result = await classify(frame, async () => file);
  show({...result, source: 'photo', frame});
  return state.last;
}

function nextVideoFrame(video) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 250);  // paused tabs and some WebViews deliver no callback
    const done = () => { clearTimeout(timer); resolve(); };
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(done);
    else requestAnimationFrame(done);
  });
}

async function cameraLoop(video) {
  for (;;) {
    await nextVideoFrame(video);
    // A track can end without an 'ended' event (track.stop(), some WebViews): check it here too.
    if (camera.stream && camera.stream.getVideoTracks().every((t) => t.readyState === 'ended')) {
      cameraLost('the camera stopped');
      continue;
    }
    if (state.paused || state.source !== 'camera' || video.readyState < 2 || !video.videoWidth) continue;
    try {
      const frame = drawToCanvas(video, video.videoWidth, video.videoHeight);
      const result = await classify(frame, canvasBlob);
      // A photo picked (or a pause) while this frame was being classified owns the screen now.
      if (state.source === 'camera' && !state.paused) show({...result, source: 'camera', frame});
    } catch (e) {
      setStatus(`error: ${e.message}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

function stopCamera() {
  for (const track of camera.stream?.getTracks() ?? []) {
    track.onended = null;
    track.stop();
  }
  camera.stream = null;
  $('video').srcObject = null;
}

async function openCamera() {
  const stream = await navigator.mediaDevices.getUserMedia(
      {video: {facingMode: {ideal: 'environment'}, width: {ideal: 640}, height: {ideal: 480}}, audio: false});
  if (document.hidden) {  // hidden while Android asked: give it back at once
    for (const track of stream.getTracks()) track.stop();
    return;
  }
  camera.stream = stream;
  camera.starts++;
  for (const track of stream.getVideoTracks()) track.onended = () => cameraLost('the camera stopped');
  const video = $('video');
  video.srcObject = stream;
  await video.play();
  camera.retryMs = 1000;
}

// Asks for the camera unless the page is hidden or already has it; retries a busy camera with a
// growing pause, but not a refusal or a missing camera (the photo mode still works then).
function startCamera() {
  if (!camera.wanted || camera.stream || camera.starting || document.hidden) return camera.starting;
  camera.starting = openCamera().catch((e) => {
    setStatus(`camera unavailable (${e.message}); pick a photo instead`);
    if (!['NotAllowedError', 'NotFoundError', 'OverconstrainedError', 'SecurityError'].includes(e.name)) {
      setTimeout(startCamera, camera.retryMs);
      camera.retryMs = Math.min(2 * camera.retryMs, 30000);
    }
  }).finally(() => { camera.starting = null; });
  return camera.starting;
}

function cameraLost(why) {
  stopCamera();
  setStatus(`${why}; starting it again…`);
  startCamera();
}

function wireControls() {
  $('pause').addEventListener('click', () => {
    if (state.source === 'photo') {  // back from a photo to the live camera
      state.source = 'camera';
      state.paused = false;
      $('photo').hidden = true;
      $('video').hidden = false;
    } else {
      state.paused = !state.paused;
    }
    $('pause').textContent = state.paused ? 'resume' : 'pause';
  });
  $('file').addEventListener('change', async (e) => {
    const file = e.target.files[0];
    e.target.value = '';
    if (!file) return;
    $('pause').textContent = 'camera';
    try {
      await classifyPhoto(file);
    } catch (err) {
      setStatus(`error: ${err.message}`);
    }
  });
  $('settings-toggle').addEventListener('click', () => { $('settings').hidden = !$('settings').hidden; });
  addEventListener('resize', () => placeGuide(state.last?.frame));
  document.addEventListener('visibilitychange', () => (document.hidden ? stopCamera() : startCamera()));
  $('ondevice').checked = settings.onDevice;
  $('server').value = settings.server;
  $('settings').addEventListener('submit', (e) => {
    e.preventDefault();
    localStorage.setItem('officenet.ondevice', $('ondevice').checked ? '1' : '0');
    localStorage.setItem('officenet.server', $('server').value.trim());
    location.replace(location.pathname);  // start again with the saved settings
  });
}

// No runtime, or no server to fall back to: say which, and open the settings to set a server.
function reportMode(mode, whyNotOnDevice) {
  const name = `${state.manifest.model.name}: ${state.manifest.classes.length} classes`;
  if (mode === 'on-device') setStatus(`${name}, on-device (${state.model.build})`);
  else if (whyNotOnDevice && settings.server) setStatus(`${whyNotOnDevice}; using the server ${settings.server}`);
  else if (settings.server) setStatus(`${name}, server`);
  else setStatus(`${whyNotOnDevice ?? 'on-device inference is off'}: set the fallback server in settings`);
  $('settings').hidden = mode === 'on-device' || !!settings.server;
}

async function main() {
  wireControls();
  state.manifest = await loadManifest(BUNDLE);
  let whyNot = null;
  if (settings.onDevice) {
    try {
      state.model = await OnDeviceModel.load(state.manifest, BUNDLE, WASM, params.get('wasm') ?? 'auto');
    } catch (e) {
      console.error(e);
      whyNot = `this phone cannot run the model itself (${e.message})`;
    }
  }
  const mode = state.model ? 'on-device' : 'server';
  reportMode(mode, whyNot);
  startCamera();
  cameraLoop($('video'));
  return mode;
}

officenet.ready = main().catch((e) => {
  setStatus(`error: ${e.message}`);
  throw e;
});
