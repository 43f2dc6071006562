// The page: loads digits.onnx with onnxruntime-web (from the local node_modules copy;
// nothing is fetched from elsewhere), classifies a drawn digit or a bundled sample and
// shows the class probabilities. `window.classifySamples()` is the hook the headless
// check (browser_check.mjs) calls.
import * as ort from './node_modules/onnxruntime-web/dist/ort.wasm.bundle.min.mjs';
import { classify, loadModel, PIXELS } from './classify.js';

// Several threads need a cross-origin-isolated page (headers `python -m http.server`
// does not send); one thread is plenty for this model and keeps the console quiet.
ort.env.wasm.numThreads = 1;

const MODEL_URL = new URLSearchParams(location.search).get('model') ?? 'digits.onnx';
const GRID = 8; // the model's image side
const BITMAP = 32; // scikit-learn's digits are 4x4 blocks of a 32x32 bitmap, counted
const $ = (id) => document.getElementById(id);

let session = null;
let queue = Promise.resolve(); // one session.run at a time
const run = (images) => (queue = queue.then(() => classify(ort, session, images)));

/** Dark-on-white cells of an 8x8 image in 0-16, scaled to the canvas. */
function drawGrid(canvas, pixels) {
  const ctx = canvas.getContext('2d');
  const cell = canvas.width / GRID;
  pixels.forEach((v, i) => {
    const shade = Math.round(255 - (255 * v) / 16);
    ctx.fillStyle = `rgb(${shade},${shade},${shade})`;
    ctx.fillRect((i % GRID) * cell, Math.floor(i / GRID) * cell, cell, cell);
  });
}

/**
 * The drawing as scikit-learn's digits encode images: the ink's bounding square scaled
 * to a 32x32 bitmap (ink = alpha >= 1/2), then the number of set bits in each 4x4
 * block (0-16). Null when nothing is drawn.
 */
function pixelsFromDrawing(pad) {
  const { width, height } = pad;
  const data = pad.getContext('2d').getImageData(0, 0, width, height).data;
  let [x0, y0, x1, y1] = [width, height, -1, -1];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (data[(y * width + x) * 4 + 3] > 0) {
        [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
      }
    }
  }
  if (x1 < 0) return null;
  const side = Math.max(x1 - x0, y1 - y0) + 1;
  const [left, top] = [(x0 + x1 + 1 - side) / 2, (y0 + y1 + 1 - side) / 2];
  const bitmap = document.createElement('canvas');
  bitmap.width = bitmap.height = BITMAP;
  const ctx = bitmap.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(pad, left, top, side, side, 0, 0, BITMAP, BITMAP);
  const bits = ctx.getImageData(0, 0, BITMAP, BITMAP).data;
  const block = BITMAP / GRID;
  const pixels = new Array(PIXELS).fill(0);
  for (let y = 0; y < BITMAP; y++) {
    for (let x = 0; x < BITMAP; x++) {
      if (bits[(y * BITMAP + x) * 4 + 3] >= 128) pixels[Math.floor(y / block) * GRID + Math.floor(x / block)] += 1;
    }
  }
  return pixels;
}

/** Classifies one image and shows it with its probabilities. */
async function show(pixels) {
  drawGrid($('seen'), pixels);
  const [result] = await run([pixels]);
  $('predicted').textContent = String(result.predicted);
  $('probabilities').replaceChildren(
    ...result.probabilities.map((p, digit) => {
      const row = document.createElement('li');
      row.className = digit === result.predicted ? 'top' : '';
      row.innerHTML = `<span>${digit}</span><span class="bar" style="width:${(100 * p).toFixed(1)}%"></span><span class="value">${(100 * p).toFixed(1)}%</span>`;
      return row;
    }),
  );
  window.lastShown = { pixels, ...result };
}

function setUpPad(pad) {
  const ctx = pad.getContext('2d', { willReadFrequently: true });
  Object.assign(ctx, { lineWidth: 28, lineCap: 'round', lineJoin: 'round', strokeStyle: '#000' });
  let drawing = false;
  pad.addEventListener('pointerdown', (e) => {
    drawing = true;
    pad.setPointerCapture(e.pointerId);
    ctx.beginPath();
    ctx.moveTo(e.offsetX, e.offsetY);
    ctx.lineTo(e.offsetX, e.offsetY);
    ctx.stroke();
  });
  pad.addEventListener('pointermove', (e) => {
    if (!drawing) return;
    ctx.lineTo(e.offsetX, e.offsetY);
    ctx.stroke();
  });
  pad.addEventListener('pointerup', () => {
    drawing = false;
    const pixels = pixelsFromDrawing(pad);
    if (pixels && session) show(pixels);
  });
  $('clear').addEventListener('click', () => ctx.clearRect(0, 0, pad.width, pad.height));
}

function setUpSamples(samples) {
  $('samples').replaceChildren(
    ...samples.map((s) => {
      const button = document.createElement('button');
      Object.assign(button, { type: 'button', title: `sample #${s.index} (a ${s.label})` });
      button.dataset.index = s.index;
      const thumb = Object.assign(document.createElement('canvas'), { width: GRID, height: GRID });
      drawGrid(thumb, s.pixels);
      button.append(thumb);
      button.addEventListener('click', () => session && show(s.pixels));
      return button;
    }),
  );
}

async function start() {
  setUpPad($('pad'));
  const samples = await (await fetch('samples.json')).json();
  setUpSamples(samples);
  try {
    session = await loadModel(ort, MODEL_URL);
  } catch (error) {
    $('status').className = 'error';
    $('status').textContent =
      `Could not load ${MODEL_URL}: ${error.message ?? error}\n` +
      'Export it first: modelspec export examples/digits/cnn.yaml --format onnx -o examples/web/digits.onnx';
    throw error;
  }
  $('status').textContent = `Model ${MODEL_URL} loaded. Draw a digit (release to classify) or pick a sample.`;
  return samples;
}

const ready = start();

/** Every bundled sample classified in one batch: [{index, label, predicted, logits, probabilities}]. */
window.classifySamples = async () => {
  const samples = await ready;
  const results = await run(samples.map((s) => s.pixels));
  return samples.map((s, i) => ({ index: s.index, label: s.label, ...results[i] }));
};
