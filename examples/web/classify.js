// Runs the exported digits model on 8x8 images, shared by the page (onnxruntime-web)
// and check.mjs (onnxruntime-node) so that both compute predictions the same way.
// `ort` is whichever onnxruntime flavour the caller imported: their APIs are the same.

/** Pixels per image: scikit-learn's digits are 8x8, row-major, intensities 0-16. */
export const PIXELS = 64;

/** Probabilities from the model's logits (its last layer is a Dense without softmax). */
export function softmax(logits) {
  const top = Math.max(...logits);
  const exps = logits.map((v) => Math.exp(v - top));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / total);
}

/** Loads an ONNX file (path, URL or bytes) into a CPU session. */
export async function loadModel(ort, source) {
  const session = await ort.InferenceSession.create(source);
  if (session.inputNames.length !== 1 || session.outputNames.length !== 1) {
    throw new Error(
      `expected one input and one output, got inputs ${session.inputNames} and outputs ${session.outputNames}`,
    );
  }
  return session;
}

/**
 * Classifies images given as arrays of 64 numbers in 0-16 (the model rescales them
 * itself), in one batch. Returns, per image, the logits, the probabilities and the
 * predicted class.
 */
export async function classify(ort, session, images) {
  const batch = new Float32Array(images.length * PIXELS);
  images.forEach((pixels, i) => {
    if (pixels.length !== PIXELS) throw new Error(`image ${i} has ${pixels.length} pixels, not ${PIXELS}`);
    batch.set(pixels, i * PIXELS);
  });
  const input = new ort.Tensor('float32', batch, [images.length, PIXELS]);
  const results = await session.run({ [session.inputNames[0]]: input });
  const output = results[session.outputNames[0]];
  const classes = output.dims[1];
  return images.map((_, i) => {
    const logits = Array.from(output.data.subarray(i * classes, (i + 1) * classes));
    const probabilities = softmax(logits);
    const predicted = probabilities.indexOf(Math.max(...probabilities));
    return { logits, probabilities, predicted };
  });
}
