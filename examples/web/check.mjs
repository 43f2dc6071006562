// Runs the exported digits model in onnxruntime-node on the bundled samples and prints
// the predictions as JSON: {"predictions": [{index, label, predicted, logits, probabilities}]}.
//
//   node check.mjs [MODEL.onnx] [SAMPLES.json]     (defaults: digits.onnx, samples.json here)
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { classify, loadModel } from './classify.js';

const here = (name) => fileURLToPath(new URL(name, import.meta.url));
const [modelPath = here('digits.onnx'), samplesPath = here('samples.json')] = process.argv.slice(2);
if (!existsSync(modelPath)) {
  console.error(`No model at ${modelPath}: export it first, e.g.
  modelspec export examples/digits/cnn.yaml --format onnx -o examples/web/digits.onnx`);
  process.exit(2);
}

const samples = JSON.parse(await readFile(samplesPath, 'utf8'));
const session = await loadModel(ort, modelPath);
const results = await classify(ort, session, samples.map((s) => s.pixels));
const predictions = samples.map((s, i) => ({ index: s.index, label: s.label, ...results[i] }));
console.log(JSON.stringify({ predictions }));
