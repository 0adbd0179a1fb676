// The README's screenshots, taken from real runs of the flowers example (examples/blobs):
// a run on main, then one with another learning rate. Writes docs/images/run-page.png (its
// run page) and docs/images/metrics-diff.png (the metrics-against-the-base Markdown the
// check and the PR comment show, through markdown-it, styled plainly). Run by hand when
// the page changes; CI skips it so a clone stays clean:
//   TRAINYARD_DOCS_SCREENSHOTS=1 npx vitest run test/page/docs-screenshots.test.ts
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffMarkdown, findBaseRun, metricsDiff } from '../../activities/lineage/compare.js';
import { loadLineage } from '../../activities/lineage/storage.js';
import { markdownToHtml } from '../../activities/report/html.js';
import { startEngine, type Engine } from '../engine/harness.js';
import { launchChromium, watchedPage } from './browser.js';
import { startPageServer, type PageServer } from './serve.js';

const ROOT = resolve(import.meta.dirname, '../..');
const EXAMPLE = join(ROOT, 'examples/blobs');
const IMAGES = join(ROOT, 'docs/images');

function exampleFiles(dir = EXAMPLE): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) Object.assign(out, exampleFiles(p));
    else out[relative(EXAMPLE, p)] = readFileSync(p, 'utf8');
  }
  return out;
}

const PLAIN_CSS = `body { font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328; margin: 0; padding: 16px; background: #fff; }
.comment { max-width: 860px; border: 1px solid #d0d7de; border-radius: 6px; padding: 4px 16px; }
h3 { font-size: 16px; } code { font: 12.5px ui-monospace, Menlo, Consolas, monospace; background: #eff1f3; padding: 1px 4px; border-radius: 4px; }
table { border-collapse: collapse; } th, td { border: 1px solid #d0d7de; padding: 5px 12px; } th { background: #f6f8fa; }`;

describe.runIf(process.env.TRAINYARD_DOCS_SCREENSHOTS === '1')('README screenshots', () => {
  let engine: Engine;
  let page: PageServer;
  let browser: Browser;

  beforeAll(async () => {
    engine = await startEngine();
    page = await startPageServer(engine);
    browser = await launchChromium();
  }, 300_000);

  afterAll(async () => {
    const proc = browser?.process();
    await browser?.close();
    if (proc && proc.exitCode === null) await new Promise((r) => proc.once('exit', r));
    await page?.server.close();
    await engine?.stop();
  });

  it(
    'the flowers example on main, then with lr=0.1: its run page and its metrics against the base',
    { timeout: 900_000 },
    async () => {
      const repo = engine.repo().write(exampleFiles());
      repo.commit('flowers');
      const trigger = { kind: 'cli' as const, user: 'alice', branch: 'main' };
      expect((await engine.run(repo, '.trainyard/flowers.yaml', { trigger })).state).toBe('succeeded');
      repo.commit('a smaller learning rate');
      const { workflowId, runId } = await engine.start(repo, '.trainyard/flowers.yaml', {
        trigger,
        params: { lr: '0.1' },
      });
      expect((await engine.result(workflowId)).state).toBe('succeeded');

      const { page: tab, problems } = await watchedPage(browser);
      await tab.goto(page.pageUrl(workflowId), { waitUntil: 'networkidle0' });
      await tab.waitForSelector('#graph svg');
      await tab.waitForSelector('#charts canvas');
      expect(problems).toEqual([]);
      await tab.screenshot({ path: join(IMAGES, 'run-page.png'), fullPage: true });

      const doc = (await loadLineage(engine.store, runId))!;
      const base = (await findBaseRun(engine.store, doc))!;
      const md = `${diffMarkdown(metricsDiff(doc, (await loadLineage(engine.store, base.runId))!), base).join('\n')}\n\nPipeline \`flowers\`, run \`${runId}\` on \`${doc.source.commit.slice(0, 12)}\`. This comment is updated by each run of this pull request.`;
      await tab.setContent(
        `<!doctype html><html><head><style>${PLAIN_CSS}</style></head><body><div class="comment">${markdownToHtml(md)}</div></body></html>`,
      );
      await (await tab.$('.comment'))!.screenshot({ path: join(IMAGES, 'metrics-diff.png') });
      await tab.close();
      process.stdout.write(`wrote ${join(IMAGES, 'run-page.png')} and ${join(IMAGES, 'metrics-diff.png')}\n`);
    },
  );
});
