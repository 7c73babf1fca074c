/// <reference lib="dom" />
/**
 * The report in a real browser: headless Debian Chromium (apt package `chromium`) driven by playwright-core.
 * Skips only when no Chromium binary exists; CI installs it.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { writeSyntheticOutput } from '../testing/synthetic-output.js';
import { LOSS_TERMS } from './metrics.js';
import { renderReport } from './report.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const describeBrowser = CHROMIUM ? describe : describe.skip;
if (!CHROMIUM) console.warn('report.browser.test: SKIPPED, no Chromium at /usr/bin/chromium (install: apt-get install -y chromium)');

describeBrowser(`report.html in headless Chromium (${CHROMIUM ?? 'skipped: apt-get install -y chromium'})`, () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'dynasyn-report-browser-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('loads every image and chart offline, with no console error', async () => {
    const { dir } = await writeSyntheticOutput(root);
    const report = await renderReport(dir);
    const context = await chromium.launchPersistentContext(join(root, 'profile'), {
      executablePath: CHROMIUM!,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
      viewport: { width: 1280, height: 900 },
    });
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('request', (r) => {
        if (!/^(data|file):/.test(r.url())) requests.push(r.url());
      });
      await page.goto(pathToFileURL(report).href, { waitUntil: 'load' });

      const images = await page.evaluate(() => Array.from(document.images, (img) => ({ alt: img.alt, complete: img.complete, width: img.naturalWidth })));
      expect(images.length).toBe(15);
      expect(images.filter((i) => !i.complete || i.width === 0)).toEqual([]);
      expect(images.find((i) => i.alt === 'reference image')?.width).toBe(64);

      const charts = await page.evaluate(() =>
        Array.from(document.querySelectorAll('figure.chart'), (f) => ({
          id: f.getAttribute('data-chart'),
          lines: f.querySelectorAll('svg polyline').length,
          height: f.getBoundingClientRect().height,
        })),
      );
      for (const term of [...LOSS_TERMS, 'gradNorm', 'lr']) {
        const c = charts.find((x) => x.id === term);
        expect(c?.lines).toBeGreaterThan(0);
        expect(c!.height).toBeGreaterThan(50);
      }
      expect(await page.locator('#random-weights').isVisible()).toBe(true);
      expect(await page.evaluate(() => document.querySelectorAll('script').length)).toBe(0);
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);

      const shot = join(root, 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(readFileSync(shot).subarray(1, 4).toString()).toBe('PNG');
    } finally {
      await context.close();
    }
  }, 60_000);
});
