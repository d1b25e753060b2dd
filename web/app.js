// The page: a drawing canvas (pencil, eraser, undo, clear, samples, upload) and the shoe, which a
// Web Worker (worker.js) regenerates after every stroke.
'use strict';

(function () {
  const PENCIL = { colour: '#000', width: 3 };
  const ERASER = { colour: '#fff', width: 16 };
  const UNDO_LIMIT = 50;
  const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

  const $ = (id) => document.getElementById(id);
  const drawing = $('drawing');
  const pen = drawing.getContext('2d', { willReadFrequently: true });
  const shoe = $('shoe');
  const params = new URLSearchParams(location.search);
  const state = { tool: PENCIL, undo: [], nextId: 1, shown: 0, ready: false, worker: null, mode: $('mode').value };
  // What the tests and the benchmark read: the last shoe, its prepared input and its masks.
  const debug = (window.e2s = { ready: false, shoes: 0, posted: 0, last: null, backend: null, load: null, error: null });

  function say(text) { $('message').textContent = text || ''; }

  function clearCanvas() {
    pen.fillStyle = '#fff';
    pen.fillRect(0, 0, drawing.width, drawing.height);
  }

  function remember() {
    state.undo.push(pen.getImageData(0, 0, drawing.width, drawing.height));
    if (state.undo.length > UNDO_LIMIT) state.undo.shift();
  }

  function generate() {
    if (!state.worker || !state.ready) return;
    const image = pen.getImageData(0, 0, drawing.width, drawing.height);
    const id = state.nextId++;
    debug.posted = id;
    state.worker.postMessage({ type: 'generate', id, rgba: image.data.buffer, width: image.width, height: image.height, mode: state.mode },
      [image.data.buffer]);
  }

  // ---------------------------------------------------------------------------------------------
  // Drawing.

  function point(event) {
    const box = drawing.getBoundingClientRect();
    return [(event.clientX - box.left) * (drawing.width / box.width), (event.clientY - box.top) * (drawing.height / box.height)];
  }

  let stroke = null;
  drawing.addEventListener('pointerdown', (event) => {
    drawing.setPointerCapture(event.pointerId);
    remember();
    stroke = point(event);
    pen.strokeStyle = pen.fillStyle = state.tool.colour;
    pen.lineWidth = state.tool.width;
    pen.lineCap = pen.lineJoin = 'round';
    pen.beginPath();
    pen.arc(stroke[0], stroke[1], state.tool.width / 2, 0, 2 * Math.PI);
    pen.fill();
  });
  drawing.addEventListener('pointermove', (event) => {
    if (!stroke) return;
    const next = point(event);
    pen.beginPath();
    pen.moveTo(stroke[0], stroke[1]);
    pen.lineTo(next[0], next[1]);
    pen.stroke();
    stroke = next;
  });
  const finish = () => {
    if (!stroke) return;
    stroke = null;
    say('');
    generate();
  };
  drawing.addEventListener('pointerup', finish);
  drawing.addEventListener('pointercancel', finish);

  function pick(tool, button) {
    state.tool = tool;
    for (const b of document.querySelectorAll('.tool')) {
      b.classList.toggle('active', b === button);
      b.setAttribute('aria-pressed', String(b === button));
    }
  }
  $('pencil').onclick = () => pick(PENCIL, $('pencil'));
  $('eraser').onclick = () => pick(ERASER, $('eraser'));
  $('undo').onclick = () => {
    if (!state.undo.length) return;
    pen.putImageData(state.undo.pop(), 0, 0);
    generate();
  };
  $('clear').onclick = () => {
    remember();
    clearCanvas();
    generate();
  };

  /** A picture onto the canvas, fitted and centred on white (an undo step). */
  function place(bitmap) {
    remember();
    clearCanvas();
    const scale = Math.min(drawing.width / bitmap.width, drawing.height / bitmap.height);
    const w = bitmap.width * scale, h = bitmap.height * scale;
    pen.drawImage(bitmap, (drawing.width - w) / 2, (drawing.height - h) / 2, w, h);
    generate();
  }

  $('upload').addEventListener('change', async (event) => {
    const file = event.target.files[0];
    event.target.value = '';
    if (!file) return;
    let bitmap;
    try {
      bitmap = await createImageBitmap(file);
    } catch (error) {
      say(`${file.name}: not a picture this browser can read. Upload a PNG or JPEG drawing.`);
      return;
    }
    const probe = new OffscreenCanvas(Math.min(bitmap.width, 512), Math.min(bitmap.height, 512));
    const context = probe.getContext('2d');
    context.drawImage(bitmap, 0, 0, probe.width, probe.height);
    const pixels = context.getImageData(0, 0, probe.width, probe.height);
    const problem = self.E2SPrepare.cleanDrawingProblem(pixels.data, pixels.width, pixels.height);
    if (problem) {
      say(`${file.name} is not a clean drawing (${problem}). This page takes dark lines on white; ` +
        'clean up photos of paper drawings with the Python tools first.');
      return;
    }
    say('');
    place(bitmap);
  });

  async function loadSamples() {
    let names = [];
    try {
      names = await (await fetch('samples/samples.json')).json();
    } catch (error) {
      return; // a site without samples
    }
    for (const name of names) {
      const img = document.createElement('img');
      img.src = `samples/${name}`;
      img.alt = name;
      img.title = `sample: ${name}`;
      img.onclick = async () => place(await createImageBitmap(img));
      $('samples').appendChild(img);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The shoe.

  function showShoe(message) {
    if (message.id < state.shown) return; // an older drawing finishing late
    state.shown = message.id;
    shoe.width = shoe.height = message.size;
    shoe.getContext('2d').putImageData(new ImageData(message.rgba, message.size, message.size), 0, 0);
    $('timing').textContent = `${Math.round(message.shoeMs)} ms per shoe (clean-up ${Math.round(message.preparedMs)} ms)`;
    const link = $('download');
    link.classList.remove('disabled');
    link.href = shoe.toDataURL('image/png');
    debug.shoes += 1;
    if (debug.shoes === 1) debug.firstShoeAt = performance.now(); // ms since the page's navigation began
    debug.last = message;
  }

  function describeBackend(backend) {
    if (backend.name === 'webgpu') return 'WebGPU';
    const threads = `WASM, ${backend.threads} thread${backend.threads === 1 ? '' : 's'}`;
    if (!self.crossOriginIsolated) {
      return `${threads} (the page is not cross-origin isolated, so WebAssembly runs on one thread; ` +
        'serve it with COOP/COEP headers or let the service worker add them)';
    }
    return backend.note ? `${threads} (${backend.note})` : threads;
  }

  function startWorker() {
    const isolated = self.crossOriginIsolated;
    const wanted = Number(params.get('threads')) || Math.min(4, navigator.hardwareConcurrency || 1);
    const threads = isolated ? Math.max(1, wanted) : 1;
    const worker = new Worker('worker.js');
    state.worker = worker;
    worker.onmessage = (event) => {
      const message = event.data;
      if (message.type === 'ready') {
        state.ready = debug.ready = true;
        debug.backend = message.backend;
        debug.load = message;
        $('backend').textContent = describeBackend(message.backend);
        generate();
      } else if (message.type === 'shoe') {
        showShoe(message);
      } else if (message.type === 'blank') {
        if (message.id >= state.shown) {
          state.shown = message.id;
          shoe.getContext('2d').clearRect(0, 0, shoe.width, shoe.height);
          $('download').classList.add('disabled');
        }
      } else if (message.type === 'fatal') {
        debug.error = message.message;
        $('backend').textContent = 'no model';
        say(`The model failed to load: ${message.message}`);
      } else if (message.type === 'error') {
        debug.error = message.message;
        say(message.message);
      }
    };
    worker.onerror = (event) => {
      debug.error = event.message;
      say(`The generator stopped: ${event.message}`);
    };
    worker.postMessage({ type: 'init', modelBase: new URL('model/', location.href).href, threads,
      backend: params.get('backend') || 'auto', mode: state.mode });
  }

  $('variation').onclick = () => {
    if (!state.worker) return;
    state.worker.postMessage({ type: 'variation' });
    generate();
  };
  $('mode').onchange = () => {
    state.mode = $('mode').value;
    $('variation').disabled = state.mode !== 'train';
    generate();
  };

  debug.regenerate = generate;
  clearCanvas();
  loadSamples();
  if (typeof WebAssembly !== 'object' || !WebAssembly.validate(SIMD_PROBE)) {
    $('backend').textContent = 'no model';
    debug.error = 'no WebAssembly SIMD';
    say('This browser cannot run the model: it needs WebAssembly with SIMD (current Chrome, Edge, Firefox, or Safari 16.4 and later).');
    return;
  }
  window.e2sIsolation.then(startWorker);
})();
