// Drives the APK's page in headless Chromium (Debian's /usr/bin/chromium, via playwright-core)
// for the tests and bench/android.py; prints one JSON object.
//
//   node android_demo/page_driver.mjs job.json      (android_demo.page.drive wraps this)
//
// job.json: {"url": "http://127.0.0.1:PORT/index.html?...", "steps": [...]} and, all optional:
//   "y4m": "frame.y4m"          fake camera playing this video
//   "block": ["litert/wasm/"]   requests to fail
//   "origin": "https://appassets.androidplatform.net/"   open the page at this origin instead: its
//                               requests are answered from the url's server (as the APK's
//                               shouldInterceptRequest answers them from the assets)
//   "args": [...]               more Chromium flags;  "init_script": "js run before the page's"
//   "grant": ["local-network-access"]   permissions the page's origin is given (as a user would)
//   "viewport": {"width", "height"}, "scale": 3, "safe_area": {"top", "bottom", "left", "right"}
//                               (CSS px; the system bars and cutout of an edge-to-edge app)
//   "cpu_throttling": 4         DevTools CPU throttling (a slower phone's rough stand-in)
//   "wait_ready": false         don't wait for window.officenet.ready;  "timeout_ms": 120000
// Steps, each answered in "results" in order:
//   {"op": "camera"}                       wait for a camera frame's result
//   {"op": "photo", "path": "x.jpg"}       pick a photo with the page's file input, wait for its result
//   {"op": "pick", "path": "x.jpg"}        only pick it (when no result is expected)
//   {"op": "preprocess", "width", "height", "rgb_b64", "input"}   the page's preprocess on given
//                                          RGB pixels (input: a manifest "input" to use instead)
//   {"op": "decode_preprocess", "path"}    the page's own photo decode + preprocess of a file
//   {"op": "bench", "warmup", "iterations", "batch"}   time the model on the last result's input
//   {"op": "frames", "n"}                  the next n camera results' per-frame times
//   {"op": "eval", "js"} / {"op": "wait", "js"}   a JS expression's value / wait until it is truthy
//   {"op": "visibility", "hidden": true}   the page hidden (app in the background) or shown again
//   {"op": "screenshot", "path": "x.png"}  the viewport as a PNG
// A result carries what the page showed (DOM text) and what it computed (raw tensors, base64).
import {createRequire} from 'node:module';
import {readFileSync} from 'node:fs';

const require = createRequire(new URL('package.json', import.meta.url));
const {chromium} = require('playwright-core');

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const timeout = job.timeout_ms ?? 120000;
const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'];
if (job.y4m) args.push(`--use-file-for-fake-video-capture=${job.y4m}`);

// In the page: bytes <-> base64 without building huge argument lists.
const PAGE_HELPERS = `
  window.__b64 = (bytes) => { let s = ''; for (let i = 0; i < bytes.length; i += 0x8000)
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000)); return btoa(s); };
  window.__bytes = (t) => new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
  window.__unb64 = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  window.__report = (r) => r && ({
    source: r.source, mode: r.mode, ms: r.ms, preprocessMs: r.preprocessMs, abstained: r.abstained,
    top: r.top, raw: r.raw ? Array.from(r.raw) : null,
    input_b64: r.input ? window.__b64(window.__bytes(r.input)) : null,
    frame: r.frame && {width: r.frame.width, height: r.frame.height,
                       rgba_b64: window.__b64(new Uint8Array(r.frame.data.buffer))},
    dom: {labels: [...document.querySelectorAll('#top .label')].map((e) => e.textContent),
          scores: [...document.querySelectorAll('#top .score')].map((e) => e.textContent),
          timing: document.getElementById('timing').textContent,
          status: document.getElementById('status').textContent}});
`;

// Waits for a result from `source` that this driver has not reported yet.
async function waitForResult(page, source) {
  await page.waitForFunction((src) => {
    const last = window.officenet?.state.last;
    return last && last.source === src && last !== window.__seen;
  }, source, {timeout});
  return page.evaluate(() => { window.__seen = window.officenet.state.last; return window.__report(window.__seen); });
}

const steps = {
  camera: (page) => waitForResult(page, 'camera'),
  async photo(page, step) {
    await page.setInputFiles('#file', step.path);
    return waitForResult(page, 'photo');
  },
  pick: (page, step) => page.setInputFiles('#file', step.path).then(() => ({picked: step.path})),
  preprocess: (page, step) => page.evaluate(({width, height, rgb_b64: b64, input}) => {
    const rgb = window.__unb64(b64);
    const rgba = new Uint8ClampedArray(width * height * 4);
    for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
      rgba[j] = rgb[i]; rgba[j + 1] = rgb[i + 1]; rgba[j + 2] = rgb[i + 2]; rgba[j + 3] = 255;
    }
    return {input_b64: window.__b64(window.__bytes(window.officenet.preprocess(rgba, width, height, input ?? undefined)))};
  }, step),
  decode_preprocess: (page, step) => page.evaluate(async (b64) => {
    const frame = await window.officenet.decodePhoto(new Blob([window.__unb64(b64)]));
    return {width: frame.width, height: frame.height, rgba_b64: window.__b64(new Uint8Array(frame.data.buffer)),
            input_b64: window.__b64(window.__bytes(window.officenet.preprocess(frame.data, frame.width, frame.height)))};
  }, readFileSync(step.path).toString('base64')),
  // performance.now() is coarse in a page that is not cross-origin isolated (0.1 ms), so each
  // sample is the mean of `batch` back-to-back runs.
  async frames(page, step) {
    const out = [];
    for (let i = 0; i < step.n; i++) {
      const r = await waitForResult(page, 'camera');
      out.push({mode: r.mode, ms: r.ms, preprocessMs: r.preprocessMs});
    }
    return {frames: out};
  },
  eval: (page, step) => page.evaluate(step.js),
  wait: async (page, step) => (await page.waitForFunction(step.js, null, {timeout})).jsonValue(),
  // Headless Chromium keeps every page visible (minimizing or switching tabs changes nothing),
  // so the page is told as a phone would tell it: document.hidden and a visibilitychange event.
  visibility: (page, step) => page.evaluate((hidden) => {
    Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
    Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => (hidden ? 'hidden' : 'visible')});
    document.dispatchEvent(new Event('visibilitychange'));
    return {hidden};
  }, step.hidden),
  async screenshot(page, step) {
    await page.screenshot({path: step.path});
    return {path: step.path};
  },
  bench: (page, step) => page.evaluate(async ({warmup, iterations, batch = 1}) => {
    const {model, last} = window.officenet.state;
    for (let i = 0; i < warmup; i++) await model.run(last.input);
    const times = [];
    for (let i = 0; i < iterations; i++) {
      const start = performance.now();
      for (let j = 0; j < batch; j++) await model.run(last.input);
      times.push((performance.now() - start) / batch);
    }
    return {times};
  }, step),
};

// The page at job.origin, each request answered by the local server under job.url.
async function serveAtOrigin(page, origin, local) {
  await page.route(`${origin}**`, async (route) => {
    const url = new URL(route.request().url());
    const response = await route.fetch({url: new URL(url.pathname.slice(1) + url.search, local).href});
    await route.fulfill({response});
  });
  const url = new URL(job.url);
  return new URL(url.pathname.slice(1) + url.search, origin).href;
}

args.push(...(job.args ?? []));
const browser = await chromium.launch({executablePath: job.chromium ?? '/usr/bin/chromium', args});
const out = {console: [], results: []};
try {
  const context = await browser.newContext({viewport: job.viewport ?? null, deviceScaleFactor: job.scale});
  if (job.grant) await context.grantPermissions(job.grant, {origin: new URL(job.origin ?? job.url).origin});
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  if (job.cpu_throttling) await cdp.send('Emulation.setCPUThrottlingRate', {rate: job.cpu_throttling});
  if (job.safe_area) {
    const {top = 0, bottom = 0, left = 0, right = 0} = job.safe_area;
    await cdp.send('Emulation.setSafeAreaInsetsOverride', {insets: {top, topMax: top, bottom, bottomMax: bottom,
                                                                     left, leftMax: left, right, rightMax: right}});
  }
  if (job.init_script) await page.addInitScript(job.init_script);
  page.on('console', (m) => out.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => out.console.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => out.console.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
  const url = job.origin ? await serveAtOrigin(page, job.origin, new URL('/', job.url).href) : job.url;
  // Registered last, so they are matched first.
  for (const blocked of job.block ?? []) await page.route(`**/${blocked}**`, (route) => route.abort());
  await page.goto(url, {timeout});
  out.url = page.url();
  if (job.wait_ready ?? true) out.mode = await page.evaluate(() => window.officenet.ready);
  await page.evaluate(PAGE_HELPERS);
  for (const step of job.steps ?? []) out.results.push(await steps[step.op](page, step));
} catch (e) {
  out.error = String(e.stack ?? e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out));
process.exitCode = out.error ? 1 : 0;
