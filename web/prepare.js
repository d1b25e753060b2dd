// The page's clean-up of a drawing: the part of the Python `prepare_sketch` (inference/sketch.py
// and thinning.py) that a clean drawing needs. A canvas drawing is black on white already, so the
// polarity check and the paper flattening are left out; what remains is finding the ink, framing it
// (crop to the drawing, centred in a square with the dataset's margin), redrawing every line at the
// dataset's width (Zhang-Suen thinning on a canvas of twice the output size, then antialiased lines
// 1.5 output pixels wide) and reducing to the model's size. Photos of paper drawings go through
// the Python tools.
//
// A classic script: the page and the worker both load it (`self.E2SPrepare`).
(function (root) {
  'use strict';

  const MARGIN = 0.04;        // sketch.DEFAULT_MARGIN
  const STROKE_WIDTH = 1.5;   // sketch.DEFAULT_STROKE_WIDTH, output pixels
  const SUPERSAMPLE = 2;      // thinning._SUPERSAMPLE
  const THICK = 2.5;          // thinning._THICK, half-width in canvas pixels
  const INK_LEVEL = 0.12;     // darkness above which a pixel is ink (sketch._find_ink on clean paper)
  const MASK_LEVEL = 0.3;     // thinning._canvas_mask's threshold
  const PAPER_SIGMA = 0.7;    // the light blur sketch._flatten_paper gives the picture first

  /** Luminance in [0, 1] of RGBA pixels, transparency composited on white. */
  function luminance(rgba, width, height) {
    const gray = new Float32Array(width * height);
    for (let i = 0, j = 0; i < gray.length; i++, j += 4) {
      const a = rgba[j + 3] / 255;
      const y = (0.299 * rgba[j] + 0.587 * rgba[j + 1] + 0.114 * rgba[j + 2]) / 255;
      gray[i] = a * y + (1 - a);
    }
    return gray;
  }

  /** A separable Gaussian blur (truncated at 4 sigma, edges repeated). */
  function gaussian(values, width, height, sigma) {
    const radius = Math.max(1, Math.ceil(4 * sigma));
    const kernel = new Float32Array(2 * radius + 1);
    let total = 0;
    for (let k = -radius; k <= radius; k++) total += (kernel[k + radius] = Math.exp(-(k * k) / (2 * sigma * sigma)));
    for (let k = 0; k < kernel.length; k++) kernel[k] /= total;
    const pass = (src, dst, along, across, stride, step) => {
      for (let a = 0; a < across; a++) {
        const base = a * stride;
        for (let i = 0; i < along; i++) {
          let sum = 0;
          if (i >= radius && i < along - radius) { // inside: no clamping
            let at = base + (i - radius) * step;
            for (let k = 0; k < kernel.length; k++, at += step) sum += kernel[k] * src[at];
          } else {
            for (let k = -radius; k <= radius; k++) {
              sum += kernel[k + radius] * src[base + Math.min(along - 1, Math.max(0, i + k)) * step];
            }
          }
          dst[base + i * step] = sum;
        }
      }
    };
    const rows = new Float32Array(values.length);
    const out = new Float32Array(values.length);
    pass(values, rows, width, height, width, 1);
    pass(rows, out, height, width, 1, width);
    return out;
  }

  /** Ink: pixels clearly darker than white paper (0/1 per pixel). */
  function findInk(gray, width, height) {
    const smooth = gaussian(gray, width, height, PAPER_SIGMA);
    const ink = new Uint8Array(width * height);
    for (let i = 0; i < ink.length; i++) ink[i] = 1 - smooth[i] > INK_LEVEL ? 1 : 0;
    return ink;
  }

  /** {top, bottom, left, right} (bottom and right exclusive) of the set pixels, or null. */
  function bounds(mask, width, height) {
    let top = height, bottom = -1, left = width, right = -1;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (mask[y * width + x]) {
          if (y < top) top = y;
          if (y > bottom) bottom = y;
          if (x < left) left = x;
          if (x > right) right = x;
        }
      }
    }
    return bottom < 0 ? null : { top, bottom: bottom + 1, left, right: right + 1 };
  }

  /** The square [left, top, right, bottom] framing the ink's box (shrunk by `inset`), centred,
   * with the dataset's margin: sketch._square_box. */
  function squareBox(box, margin, inset) {
    let extent = Math.max(box.bottom - box.top, box.right - box.left);
    extent = Math.max(extent - 2 * inset, 0.5 * extent);
    const side = extent / (1 - 2 * margin);
    const cx = (box.left + box.right) / 2, cy = (box.top + box.bottom) / 2;
    return [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2];
  }

  /** Weights of PIL's resampling (precompute_coeffs) for one axis: output pixel i reads input
   * pixels start[i] .. start[i] + weights[i].length - 1; zero beyond the picture. */
  function coefficients(from, to, inSize, outSize, filter, support) {
    const scale = (to - from) / outSize;
    const filterScale = Math.max(scale, 1);
    const reach = support * filterScale;
    const start = new Int32Array(outSize), weights = [];
    for (let i = 0; i < outSize; i++) {
      const centre = from + (i + 0.5) * scale;
      const lo = Math.floor(centre - reach + 0.5), hi = Math.floor(centre + reach + 0.5);
      const w = [];
      let total = 0;
      for (let x = lo; x < hi; x++) {
        const v = filter((x - centre + 0.5) / filterScale);
        w.push(v);
        total += v;
      }
      for (let k = 0; k < w.length; k++) w[k] = total ? w[k] / total : 0;
      // Pixels outside the picture read as zero (the Python side crops with zero padding).
      start[i] = lo;
      weights.push(w);
    }
    return { start, weights, inSize };
  }

  const triangle = (x) => Math.max(0, 1 - Math.abs(x));

  /** The square `box` of a one-channel picture resized to n x n with PIL's bilinear filter. */
  function resampleBox(values, width, height, box, n) {
    const cx = coefficients(box[0], box[2], width, n, triangle, 1);
    const cy = coefficients(box[1], box[3], height, n, triangle, 1);
    const rows = new Float32Array(height * n);
    for (let y = 0; y < height; y++) {
      for (let i = 0; i < n; i++) {
        const w = cx.weights[i], s = cx.start[i];
        let sum = 0;
        for (let k = 0; k < w.length; k++) {
          const x = s + k;
          if (x >= 0 && x < width) sum += w[k] * values[y * width + x];
        }
        rows[y * n + i] = sum;
      }
    }
    const out = new Float32Array(n * n);
    for (let j = 0; j < n; j++) {
      const w = cy.weights[j], s = cy.start[j];
      for (let i = 0; i < n; i++) {
        let sum = 0;
        for (let k = 0; k < w.length; k++) {
          const y = s + k;
          if (y >= 0 && y < height) sum += w[k] * rows[y * n + i];
        }
        out[j * n + i] = sum;
      }
    }
    return out;
  }

  /** The ink inside `box` on the thinning canvas (n x n, 0/1): thinning._canvas_mask. */
  function canvasMask(ink, width, height, box, n) {
    const values = resampleBox(ink, width, height, box, n);
    const mask = new Uint8Array(n * n);
    for (let i = 0; i < mask.length; i++) mask[i] = values[i] > MASK_LEVEL ? 1 : 0;
    return mask;
  }

  // Zhang and Suen's thinning: for each of the 256 neighbourhoods (bit k: NW, N, NE, E, SE, S, SW,
  // W), whether the first (1), the second (2) or both (3) sub-iterations remove the pixel.
  const THINNING_TABLE = (() => {
    const table = new Uint8Array(256);
    for (let code = 0; code < 256; code++) {
      const [nw, n, ne, e, se, s, sw, w] = [0, 1, 2, 3, 4, 5, 6, 7].map((k) => (code >> k) & 1);
      const ring = [n, ne, e, se, s, sw, w, nw];
      const count = ring.reduce((a, b) => a + b, 0);
      let rises = 0;
      for (let k = 0; k < 8; k++) if (!ring[k] && ring[(k + 1) % 8]) rises++;
      const candidate = count >= 2 && count <= 6 && rises === 1;
      const first = candidate && n * e * s === 0 && e * s * w === 0;
      const second = candidate && n * e * w === 0 && n * s * w === 0;
      table[code] = (first ? 1 : 0) + (second ? 2 : 0);
    }
    return table;
  })();

  /** One-pixel centre lines of a 0/1 mask (n x n), worked out within the mask's bounding box. */
  function skeletonize(mask, n) {
    const skeleton = new Uint8Array(n * n);
    const inked = bounds(mask, n, n);
    if (!inked) return skeleton;
    const rows = inked.bottom - inked.top, cols = inked.right - inked.left;
    const size = cols + 2; // a frame of background around the box
    let current = new Uint8Array(size * (rows + 2));
    for (let y = 0; y < rows; y++) {
      const from = (y + inked.top) * n + inked.left;
      current.set(mask.subarray(from, from + cols), (y + 1) * size + 1);
    }
    const next = current.slice();
    let removed = true;
    while (removed) {
      removed = false;
      for (const pass of [1, 2]) {
        for (let y = 1; y <= rows; y++) {
          for (let x = 1, i = y * size + 1; x <= cols; x++, i++) {
            if (!current[i]) continue;
            const code = current[i - size - 1] | (current[i - size] << 1) | (current[i - size + 1] << 2) |
              (current[i + 1] << 3) | (current[i + size + 1] << 4) | (current[i + size] << 5) |
              (current[i + size - 1] << 6) | (current[i - 1] << 7);
            const rule = THINNING_TABLE[code];
            if (rule === 3 || rule === pass) {
              next[i] = 0;
              removed = true;
            }
          }
        }
        current.set(next);
      }
    }
    for (let y = 0; y < rows; y++) {
      const from = (y + 1) * size + 1;
      skeleton.set(current.subarray(from, from + cols), (y + inked.top) * n + inked.left);
    }
    return skeleton;
  }

  function count(mask) {
    let c = 0;
    for (let i = 0; i < mask.length; i++) c += mask[i];
    return c;
  }

  /** The strokes' mean half-width in canvas pixels: area over length, halved. */
  function halfWidth(mask, skeleton) {
    return count(mask) / Math.max(1, count(skeleton)) / 2;
  }

  /** Ink in [0, 1] at size x size: the centre lines drawn `width` output pixels wide, antialiased
   * (a canvas pixel d from the nearest centre-line pixel gets min(1, reach - d)), then each block
   * of SUPERSAMPLE x SUPERSAMPLE canvas pixels averaged: thinning.redraw. */
  function redraw(skeleton, n, size, width) {
    const reach = (width * SUPERSAMPLE) / 2 + 0.5;
    const r = Math.ceil(reach);
    const lines = new Float32Array(n * n);
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        if (!skeleton[y * n + x]) continue;
        for (let dy = -r; dy <= r; dy++) {
          const yy = y + dy;
          if (yy < 0 || yy >= n) continue;
          for (let dx = -r; dx <= r; dx++) {
            const xx = x + dx;
            const d = Math.hypot(dx, dy);
            if (xx < 0 || xx >= n || d >= reach) continue;
            const v = Math.min(1, reach - d);
            if (v > lines[yy * n + xx]) lines[yy * n + xx] = v;
          }
        }
      }
    }
    const out = new Float32Array(size * size);
    const f = n / size;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        let sum = 0;
        for (let a = 0; a < f; a++) for (let b = 0; b < f; b++) sum += lines[(y * f + a) * n + x * f + b];
        out[y * size + x] = Math.min(1, sum / (f * f));
      }
    }
    return out;
  }

  /** Thick strokes smoothed (blur, re-threshold) before thinning, so ragged outlines grow no spurs. */
  function smoothThick(mask, n, half) {
    const blurred = gaussian(Float32Array.from(mask), n, n, half / 2);
    const out = new Uint8Array(n * n);
    for (let i = 0; i < out.length; i++) out[i] = blurred[i] > 0.5 ? 1 : 0;
    return out;
  }

  /**
   * The model's input made from a clean drawing: {pixels: Uint8Array size * size gray (black lines
   * on white), box} or {blank: true} when there is no drawing yet.
   */
  function prepareDrawing(rgba, width, height, size) {
    const ink = findInk(luminance(rgba, width, height), width, height);
    const inked = bounds(ink, width, height);
    const area = count(ink);
    if (!inked || area < Math.max(12, 2e-5 * ink.length) ||
        Math.min(inked.bottom - inked.top, inked.right - inked.left) < 0.01 * Math.max(width, height)) {
      return { blank: true };
    }
    const n = SUPERSAMPLE * size;
    let box = squareBox(inked, MARGIN, 0);
    let mask = canvasMask(ink, width, height, box, n);
    let skeleton = skeletonize(mask, n);
    let half = halfWidth(mask, skeleton);
    if (half > 1.5) {
      // Thick strokes are framed by their centre lines, as the Python crop does.
      const framed = squareBox(inked, MARGIN, (half * (box[2] - box[0])) / n);
      mask = canvasMask(ink, width, height, framed, n);
      half *= (box[2] - box[0]) / (framed[2] - framed[0]);
      box = framed;
      if (half < 1.1 * THICK) {
        skeleton = skeletonize(mask, n);
        half = halfWidth(mask, skeleton);
      }
    }
    if (half > THICK) skeleton = skeletonize(smoothThick(mask, n, half), n);
    const lines = redraw(skeleton, n, size, STROKE_WIDTH);
    const pixels = new Uint8Array(size * size);
    for (let i = 0; i < pixels.length; i++) pixels[i] = Math.max(0, Math.min(255, Math.round((1 - lines[i]) * 255)));
    return { pixels, box };
  }

  /**
   * Why an uploaded picture is not a clean drawing (black or dark lines on flat white, no colour),
   * or null when it is one. Photos of paper (grey, uneven light), photos of shoes (colour) and light
   * lines on dark fail.
   */
  function cleanDrawingProblem(rgba, width, height) {
    const gray = luminance(rgba, width, height);
    const sorted = Float32Array.from(gray).sort();
    const median = sorted[Math.floor(sorted.length / 2)];
    if (median < 0.5) return 'it looks like light lines on a dark ground';
    let colourful = 0, marked = 0, paper = 0, paperSum = 0, paperSquares = 0;
    for (let i = 0, j = 0; i < gray.length; i++, j += 4) {
      if (gray[i] > 0.7) {
        paper++;
        paperSum += gray[i];
        paperSquares += gray[i] * gray[i];
      }
      if (gray[i] < 0.9) {
        marked++;
        const chroma = Math.max(rgba[j], rgba[j + 1], rgba[j + 2]) - Math.min(rgba[j], rgba[j + 1], rgba[j + 2]);
        if (chroma > 60) colourful++;
      }
    }
    if (marked && colourful / marked > 0.2) return 'it has colour, like a photo';
    const paperMean = paperSum / Math.max(1, paper);
    const paperSpread = Math.sqrt(Math.max(0, paperSquares / Math.max(1, paper) - paperMean * paperMean));
    if (median < 0.9 || paperSpread > 0.04) return 'the paper is grey or unevenly lit, like a photo of paper';
    return null;
  }

  root.E2SPrepare = { prepareDrawing, cleanDrawingProblem, luminance, skeletonize, MARGIN, STROKE_WIDTH };
})(globalThis);
