// Opens the page in headless Chromium (playwright-core) and prints what it computes, as
// JSON: {"predictions": [...] (window.classifySamples()), "shown": [the class the page
// displays after clicking each sample], "drawn": {pixels, predicted} (a stroke drawn with
// the mouse), "external": [requests to anything but the local server]}.
//
//   node browser_check.mjs [MODEL.onnx]        (default: digits.onnx here)
//
// It serves this folder itself (Node's http module, 127.0.0.1, a free port), with
// /digits.onnx answered from MODEL.onnx. Chromium: $CHROMIUM or /usr/bin/chromium.
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = fileURLToPath(new URL('.', import.meta.url));
const modelPath = process.argv[2] ?? join(root, 'digits.onnx');
if (!existsSync(modelPath)) {
  console.error(`No model at ${modelPath}: export it first, e.g.
  modelspec export examples/digits/cnn.yaml --format onnx -o examples/web/digits.onnx`);
  process.exit(2);
}
const TYPES = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
};

/** A static server for this folder; paths that leave it are refused. */
function serve() {
  const server = createServer(async (request, response) => {
    const path = decodeURIComponent(new URL(request.url, 'http://x').pathname);
    const file = path === '/digits.onnx' ? modelPath : normalize(join(root, path === '/' ? 'index.html' : path));
    if (file !== modelPath && !file.startsWith(root.endsWith(sep) ? root : root + sep)) {
      response.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      response.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const server = await serve();
const origin = `http://127.0.0.1:${server.address().port}`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage();
  const external = [];
  page.on('request', (r) => r.url().startsWith(origin) || r.url().startsWith('data:') || external.push(r.url()));
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && console.error(`page console: ${m.text()}`));
  await page.goto(`${origin}/index.html`);
  await page.waitForFunction(() => window.classifySamples !== undefined);
  const predictions = await page.evaluate(() => window.classifySamples());

  // The page's own path: click each sample, read the class it displays.
  const shown = [];
  for (const { index } of predictions) {
    await page.evaluate(() => (window.lastShown = undefined));
    await page.click(`#samples button[data-index="${index}"]`);
    await page.waitForFunction(() => window.lastShown !== undefined);
    shown.push(Number(await page.textContent('#predicted')));
  }

  // Drawing: a vertical stroke down the middle of the pad.
  await page.evaluate(() => (window.lastShown = undefined));
  const box = await page.locator('#pad').boundingBox();
  const x = box.x + box.width / 2;
  await page.mouse.move(x, box.y + 0.15 * box.height);
  await page.mouse.down();
  for (let t = 0.15; t <= 0.85; t += 0.05) await page.mouse.move(x, box.y + t * box.height);
  await page.mouse.up();
  await page.waitForFunction(() => window.lastShown !== undefined);
  const drawn = await page.evaluate(() => ({ pixels: window.lastShown.pixels, predicted: window.lastShown.predicted }));

  console.log(JSON.stringify({ predictions, shown, drawn, external }));
} finally {
  await browser.close();
  server.close();
}
