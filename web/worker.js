// The generator, off the page's thread: loads the model once, then turns drawings into shoes.
// Only the newest drawing waiting is run: a stroke made while a shoe is being generated replaces any
// drawing still waiting, so the shoe catches up with the latest stroke, never with a backlog.
'use strict';

importScripts('ort/ort.min.js', 'prepare.js');

const FORMAT = 1; // the model files this page reads (web_model.WEB_FORMAT)

let manifest = null;
let weights = null; // the int8 weights both graphs share, downloaded once
let sessions = {}; // mode -> InferenceSession, made when first used
let backend = null; // {name: 'webgpu' | 'wasm', threads}
let masks = null; // the current variation's dropout masks
let busy = false;
let waiting = null; // the newest drawing not yet run

function post(type, body) {
  self.postMessage(Object.assign({ type }, body || {}));
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function loadManifest(base) {
  let response;
  try {
    response = await fetch(base + 'model.json');
  } catch (error) {
    throw new Error(`could not download ${base}model.json (${error.message})`);
  }
  if (!response.ok) throw new Error(`could not download ${base}model.json (HTTP ${response.status})`);
  let found;
  try {
    found = await response.json();
  } catch (error) {
    throw new Error(`${base}model.json is not the manifest of a model (${error.message})`);
  }
  if (found.format !== FORMAT) {
    throw new Error(`the model files are format ${found.format}, this page reads format ${FORMAT}: ` +
      'rebuild the site with `edges2shoes web build` so page and model come from one build');
  }
  return found;
}

/** A variation: fresh dropout masks (0, or 1 / (1 - p)), drawn with the browser's random source. */
function drawMasks() {
  const p = manifest.dropout_p;
  return manifest.modes.train.masks.map((spec) => {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const random = new Uint32Array(size);
    for (let at = 0; at < size; at += 16384) crypto.getRandomValues(random.subarray(at, Math.min(size, at + 16384)));
    const values = new Float32Array(size);
    for (let i = 0; i < size; i++) values[i] = random[i] / 4294967296 >= p ? 1 / (1 - p) : 0;
    return values;
  });
}

async function createSession(mode) {
  const graph = await fetchBytes(self.modelBase + manifest.modes[mode].file);
  const options = {
    executionProviders: [backend.name],
    graphOptimizationLevel: 'all',
    externalData: [{ path: manifest.weights, data: weights }],
    // Fold each DequantizeLinear of a constant weight at load: the int8 weights become float once,
    // not at every run.
    extra: { session: { disable_quant_qdq: '1' } },
  };
  return ort.InferenceSession.create(graph, options);
}

async function session(mode) {
  if (!sessions[mode]) {
    // One mode's session at a time: each holds its own float copy of the weights.
    const held = Object.values(sessions);
    sessions = {};
    for (const other of held) await other.release();
    sessions[mode] = await createSession(mode);
  }
  return sessions[mode];
}

async function webgpuAdapter(wanted) {
  if (wanted === 'wasm' || !self.navigator || !navigator.gpu) return null;
  try {
    return await navigator.gpu.requestAdapter();
  } catch (error) {
    return null;
  }
}

async function init(settings) {
  const started = performance.now();
  self.modelBase = settings.modelBase;
  ort.env.wasm.wasmPaths = new URL('ort/', self.location.href).href;
  ort.env.wasm.numThreads = settings.threads;
  ort.env.logLevel = 'error';
  manifest = await loadManifest(settings.modelBase);
  weights = await fetchBytes(settings.modelBase + manifest.weights);
  const downloaded = performance.now();
  masks = drawMasks();
  const adapter = await webgpuAdapter(settings.backend);
  backend = { name: adapter ? 'webgpu' : 'wasm', threads: settings.threads };
  try {
    await session(settings.mode);
  } catch (error) {
    if (backend.name !== 'webgpu') throw error;
    backend = { name: 'wasm', threads: settings.threads, note: `WebGPU failed (${error.message})` };
    sessions = {};
    await session(settings.mode);
  }
  const ready = performance.now();
  post('ready', {
    backend, imageSize: manifest.image_size, source: manifest.source,
    downloadMs: downloaded - started, loadMs: ready - downloaded, totalMs: ready - started,
  });
}

/** The prepared gray input as the model's (1, C, S, S) tensor in [-1, 1]. */
function inputTensor(pixels) {
  const size = manifest.image_size, channels = manifest.in_channels, plane = size * size;
  const data = new Float32Array(channels * plane);
  for (let i = 0; i < plane; i++) {
    const v = pixels[i] / 127.5 - 1;
    for (let c = 0; c < channels; c++) data[c * plane + i] = v;
  }
  return new ort.Tensor('float32', data, [1, channels, size, size]);
}

/** The photo output ([-1, 1], CHW) as RGBA bytes, rounded as the Python side rounds. */
function photoPixels(output) {
  const size = manifest.image_size, plane = size * size, data = output.data;
  const rgba = new Uint8ClampedArray(plane * 4);
  const channels = manifest.out_channels;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.max(-1, Math.min(1, data[Math.min(c, channels - 1) * plane + i]));
      rgba[i * 4 + c] = Math.round((v + 1) * 127.5);
    }
    rgba[i * 4 + 3] = 255;
  }
  return rgba;
}

async function generate(job) {
  const started = performance.now();
  const prepared = self.E2SPrepare.prepareDrawing(new Uint8ClampedArray(job.rgba), job.width, job.height, manifest.image_size);
  const preparedMs = performance.now() - started;
  if (prepared.blank) {
    post('blank', { id: job.id });
    return;
  }
  const run = await session(job.mode);
  const feeds = { edges: inputTensor(prepared.pixels) };
  if (job.mode === 'train') {
    manifest.modes.train.masks.forEach((spec, k) => { feeds[spec.name] = new ort.Tensor('float32', masks[k], spec.shape); });
  }
  const before = performance.now();
  const results = await run.run(feeds);
  const shoeMs = performance.now() - before;
  const rgba = photoPixels(results.photo);
  results.photo.dispose && results.photo.dispose();
  post('shoe', {
    id: job.id, mode: job.mode, rgba, prepared: prepared.pixels, masks: job.mode === 'train' ? masks : [],
    preparedMs, shoeMs, size: manifest.image_size,
  });
}

async function drain() {
  if (busy) return;
  busy = true;
  try {
    while (waiting) {
      // Let drawings posted meanwhile arrive first: the newest one supersedes the others.
      await new Promise((resolve) => setTimeout(resolve, 0));
      const job = waiting;
      waiting = null;
      try {
        await generate(job);
      } catch (error) {
        post('error', { id: job.id, message: `generating failed: ${error.message || error}` });
      }
    }
  } finally {
    busy = false;
  }
}

self.onmessage = async (event) => {
  const message = event.data;
  if (message.type === 'init') {
    try {
      await init(message);
    } catch (error) {
      post('fatal', { message: String(error.message || error) });
    }
  } else if (message.type === 'generate') {
    waiting = message; // supersedes any drawing still waiting
    drain();
  } else if (message.type === 'variation') {
    masks = drawMasks();
  }
};
