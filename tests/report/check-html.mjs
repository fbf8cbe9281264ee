// Opens an mcp-canary HTML report in headless Chromium and checks that it was looked at, not
// only parsed: no console error, no page error, no request other than the file itself (the
// report is self-contained), and every chart drew geometry. Writes a PNG screenshot.
//
// usage: node check-html.mjs PLAYWRIGHT_PREFIX REPORT.html SCREENSHOT.png
// env:   CHROMIUM (default /usr/bin/chromium)
// Prints one JSON line: {"charts":{"chart-throughput":12,...},"problems":[...]}; exits 1 when
// there is a problem.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [prefix, html, png] = process.argv.slice(2);
if (!prefix || !html || !png) {
  console.error('usage: node check-html.mjs PLAYWRIGHT_PREFIX REPORT.html SCREENSHOT.png');
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(prefix), 'package.json'));
const { chromium } = require('playwright-core');

const url = pathToFileURL(path.resolve(html)).href;
const problems = [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  timeout: 60_000,
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => { if (r.url() !== url) problems.push(`request: ${r.url()}`); });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  await page.goto(url, { waitUntil: 'load', timeout: 30_000 });
  // Per chart: drawn shapes with geometry (polyline/polygon points, a path's d, a rect's size),
  // and whether the SVG was laid out with a size.
  const charts = await page.evaluate(() => {
    const out = {};
    for (const fig of document.querySelectorAll('figure.chart')) {
      const svg = fig.querySelector('svg');
      if (!svg) { out[fig.id] = -1; continue; }
      const box = svg.getBoundingClientRect();
      let n = 0;
      for (const el of svg.querySelectorAll('polyline, polygon, path, rect')) {
        const geometry = el.getAttribute('points') || el.getAttribute('d') || '';
        const b = el.getBBox();
        if (el.tagName === 'rect' ? b.width > 0 && b.height > 0 && el.getAttribute('fill') !== '#FFFFFF'
                                  : geometry.trim().split(/\s+/).length >= 2 && (b.width > 0 || b.height > 0)) n++;
      }
      out[fig.id] = box.width > 0 && box.height > 0 ? n : 0;
    }
    return out;
  });
  if (Object.keys(charts).length === 0) problems.push('no chart in the page');
  for (const [id, n] of Object.entries(charts)) if (n <= 0) problems.push(`chart ${id} drew nothing`);
  await page.screenshot({ path: png, fullPage: true });
  console.log(JSON.stringify({ charts, problems }));
} finally {
  await browser.close();
}
process.exit(problems.length ? 1 : 0);
