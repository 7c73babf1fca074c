import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HOSTILE_PROMPT, writeSyntheticOutput } from '../testing/synthetic-output.js';
import { readManifest, writeManifest } from './artifacts.js';
import { LOSS_TERMS } from './metrics.js';
import { buildReportHtml, renderReport } from './report.js';

let root: string;
let dir: string;
let html: string;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'dynasyn-report-'));
  ({ dir } = await writeSyntheticOutput(root));
  html = readFileSync(await renderReport(dir), 'utf8');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('renderReport', () => {
  it('is self-contained: every image is a data: URL and nothing is fetched', () => {
    const srcs = [...html.matchAll(/<img [^>]*src="([^"]*)"/g)].map((m) => m[1]!);
    // reference + 2 masks, 3 augmented x (image + masks), 2 x (before + after), 2 samples
    expect(srcs.length).toBe(3 + 6 + 4 + 2);
    for (const s of srcs) expect(s).toMatch(/^data:image\/png;base64,/);
    expect(html).not.toMatch(/<script|<link|@import|url\(|(src|href)="(https?:|\/\/)/i);
    expect(html).toContain("default-src 'none'");
  });

  it('escapes user text: prompts cannot inject markup', () => {
    expect(html).not.toContain(HOSTILE_PROMPT);
    expect(html).toContain('a photo of &lt;asset0&gt; &amp; &quot;&lt;asset1&gt;&quot; &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;');
  });

  it('shows an example before GSA beside its result when the composed set is kept', async () => {
    expect(html).not.toContain('composed image 0');
    mkdirSync(join(dir, 'composed'), { recursive: true });
    copyFileSync(join(dir, 'augmented', 'aug-000.png'), join(dir, 'composed', 'aug-000.png'));
    const withComposed = await buildReportHtml(dir);
    rmSync(join(dir, 'composed'), { recursive: true });
    const pair = withComposed.match(/<div class="pair augmented">([\s\S]*?)<\/div>/)![1]!;
    expect(pair.indexOf('alt="composed image 0"')).toBeGreaterThan(-1);
    expect(pair.indexOf('alt="composed image 0"')).toBeLessThan(pair.indexOf('alt="augmented image 0"'));
    expect(pair).toContain('composed (before GSA)');
    expect(withComposed).not.toContain('composed image 1'); // only the kept one
  });

  it('never inlines a file an index points to outside the directory', () => {
    expect(html).toContain('augmented image 3: not produced');
    expect(html).not.toContain(Buffer.from('{"_class_name"').toString('base64').slice(0, 16));
  });

  it('has one chart per loss term with both phases and the phase boundary', () => {
    for (const term of [...LOSS_TERMS, 'gradNorm', 'lr']) {
      const chart = html.match(new RegExp(`<figure class="chart" data-chart="${term}">([\\s\\S]*?)</figure>`))?.[1];
      expect(chart).toBeDefined();
      expect(chart).toContain('#2a6fdb'); // phase 1
      expect(chart).toContain('#d9480f'); // phase 2
      expect(chart).toMatch(/class="marker"/);
    }
    // NaN steps of L_AUG break its line into several pieces instead of drawing through zero
    const aug = html.match(/data-chart="aug">([\s\S]*?)<\/figure>/)![1]!;
    expect((aug.match(/<polyline/g) ?? []).length).toBeGreaterThan(2);
  });

  it('shows attention before/after with the numbers, run facts and the random-weights warning', () => {
    expect(html).toContain('id="random-weights"');
    expect(html).toMatch(/images are noise by nature/);
    expect(html).toMatch(/data-token="&lt;asset1&gt;"/);
    expect(html).toMatch(/mass in mask before/);
    expect(html).toMatch(/CLIP-T 0\.31 · CLIP-I 0\.82/);
    expect(html).toMatch(/4 steps · ddim · guidance 7\.5/);
    expect(html).toMatch(/phase 1: 12, phase 2: 12/);
    expect(html).toMatch(/toy panda/);
  });

  it('drops the warning for a trained backbone', async () => {
    const m = readManifest(dir);
    writeManifest(dir, { ...m, backbone: { ...m.backbone, randomWeights: false } });
    expect(await buildReportHtml(dir)).not.toContain('id="random-weights"');
    writeManifest(dir, m);
  });
});
