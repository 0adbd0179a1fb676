// The run page in a real headless Chromium: `trainyard serve` in-process (no workers of its
// own, as a replica) against this file's Temporal workers and store, real runs in podman.
// A first run on main records the base; a second with another learning rate is the run
// whose page is opened: header, steps, the Mermaid graph, charts with the base overlaid,
// outputs that download, parameters and logs — with hostile text shown as text.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunLinks } from '../../activities/githost/links.js';
import type { RunningServer } from '../../app/serve.js';
import type { RunStatus } from '../../model/types.js';
import { BUSYBOX_IMAGE, startEngine, stepOf, type Engine, type GitRepo } from '../engine/harness.js';
import { launchChromium, watchedPage } from './browser.js';
import { startPageServer, type PageServer } from './serve.js';

const HOSTILE = '<img src=x onerror=alert(1)>';
export const SCREENSHOT = resolve(import.meta.dirname, '../../test-results/run-page.png');

// `prepare` prints a hostile line and writes the data; `train` logs a loss that depends on the learning rate.
const pipeline = (salt: string) => `
name: fit
params:
  lr: { type: number, default: 0.5 }
  note: { type: string, default: "${HOSTILE}" }
steps:
  prepare:
    image: ${BUSYBOX_IMAGE}
    run: echo '${HOSTILE}'; printf 'ok\\342\\200\\256gnp.exe\\n'; echo "rows for $SALT" > /outputs/data
    env: { SALT: "${salt}" }
    outputs: [data]
    params: []
  train:
    image: ${BUSYBOX_IMAGE}
    run: |
      for i in 1 2 3 4 5 6; do awk -v lr="$PARAM_LR" -v i="$i" 'BEGIN { printf "{\\"epoch\\": %d, \\"loss\\": %.4f, \\"acc\\": %.3f}\\n", i, lr / i, 1 - 0.5 / i }'; done
      { cat /inputs/data; echo "lr $PARAM_LR"; } > /outputs/model; echo trained >&2
    env: { SALT: "${salt}" }
    inputs: { data: steps.prepare.outputs.data }
    outputs: [model]
    params: [lr]
`;

let engine: Engine;
let server: RunningServer;
let browser: Browser;
let repo: GitRepo;
let links: RunLinks;
let pageUrl: PageServer['pageUrl'];

let head: { workflowId: string; status: RunStatus };

beforeAll(async () => {
  engine = await startEngine();
  ({ server, links, pageUrl } = await startPageServer(engine));
  browser = await launchChromium();
  repo = engine.repo().write({ '.trainyard/fit.yaml': pipeline(engine.salt) });
  repo.commit('base');
  const trigger = { kind: 'cli' as const, user: 'test', branch: 'main' };
  const base = await engine.run(repo, '.trainyard/fit.yaml', { trigger, params: {} });
  expect(base.state).toBe('succeeded');
  repo.commit('tune');
  const started = await engine.start(repo, '.trainyard/fit.yaml', { trigger, params: { lr: '0.25' } });
  head = { workflowId: started.workflowId, status: await engine.result(started.workflowId) };
  expect(head.status.state).toBe('succeeded');
}, 400_000);

afterAll(async () => {
  const proc = browser?.process();
  await browser?.close();
  if (proc && proc.exitCode === null) await new Promise((r) => proc.once('exit', r));
  await server?.close();
  await engine?.stop();
});

describe('the run page in Chromium', () => {
  it('draws a finished run: header, steps, the graph, charts with the base overlaid, outputs, params and logs, without console errors', async () => {
    const { page, problems, dialogs } = await watchedPage(browser);
    await page.goto(pageUrl(head.workflowId), { waitUntil: 'networkidle0' });
    await page.waitForSelector('#graph svg', { timeout: 30_000 }).catch(async (e: unknown) => {
      throw new Error(`${String(e)}\n${problems.join('\n')}\n${await page.$eval('main', (m) => m.innerText)}`);
    });
    await page.waitForSelector('#charts canvas', { timeout: 30_000 });

    const header = await page.$eval('header', (e) => e.textContent ?? '');
    expect(header).toContain('fit');
    expect(header).toContain('succeeded');
    expect(header).toContain(repo.git('rev-parse', 'HEAD').slice(0, 12));
    expect(header).toContain('local run by test');
    const rows = await page.$$eval('#steps tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
    );
    expect(rows.map((r) => r[0])).toEqual(['prepare', 'train']);
    expect(rows.map((r) => r[1])).toEqual(['cached', 'succeeded']);
    expect(rows[0]![2]).toBe('cached');
    expect(rows[1]![2]).toBe('ran');

    // One Mermaid node per step, labelled with the step names.
    const nodes = await page.$$eval('#graph svg g.node', (gs) => gs.map((g) => g.textContent?.trim()));
    expect(nodes.sort()).toEqual(['prepare', 'train']);

    // Charts of loss and acc (epoch is a counter), each with this run and the base run's series.
    const charts = await page.$$eval('#charts canvas', (cs) =>
      cs.map((c) => {
        const chart = (
          window as unknown as {
            Chart: {
              getChart(c: HTMLCanvasElement): { data: { datasets: { label: string; data: { y: number }[] }[] } };
            };
          }
        ).Chart.getChart(c as HTMLCanvasElement)!;
        const ctx = (c as HTMLCanvasElement).getContext('2d')!;
        const px = ctx.getImageData(0, 0, (c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height).data;
        let inked = 0;
        for (let i = 3; i < px.length; i += 4) if (px[i]! > 0) inked += 1;
        return {
          metric: c.getAttribute('data-metric'),
          sets: chart.data.datasets.map((d) => ({ label: d.label, ys: d.data.map((p) => p.y) })),
          inked,
        };
      }),
    );
    expect(charts.map((c) => c.metric)).toEqual(['train.loss', 'train.acc']);
    const loss = charts[0]!;
    expect(loss.sets.map((s) => s.label)).toEqual(['this run', 'base']);
    expect(loss.sets[0]!.ys).toEqual([0.25, 0.125, 0.0833, 0.0625, 0.05, 0.0417]);
    expect(loss.sets[1]!.ys).toEqual([0.5, 0.25, 0.1667, 0.125, 0.1, 0.0833]);
    expect(loss.inked).toBeGreaterThan(1000);

    // The comparison the check shows, as a table.
    const comparison = await page.$eval('.comparison', (e) => e.textContent ?? '');
    expect(comparison).toContain('Compared with the previous successful run on main');
    expect(comparison).toMatch(/train\.loss\s*0\.0417\s*0\.0833\s*-0\.0416 \(-49\.9%\)/);

    const params = await page.$$eval('#params tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
    );
    expect(params).toEqual([
      ['lr', '0.25'],
      ['note', HOSTILE],
    ]);

    // Hostile text is text: shown verbatim, no element made of it, no script ran.
    const log = await page.$eval('details.log[data-step="prepare"] pre', (e) => e.textContent ?? '');
    expect(log).toContain(HOSTILE);
    // A right-to-left override in a log line is shown, not obeyed.
    expect(log).toContain('ok[U+202E]gnp.exe');
    expect(log).not.toMatch(/\p{Bidi_Control}/u);
    expect(await page.$eval('details.log[data-step="train"] .stderr', (e) => e.textContent)).toBe('trained\n');
    expect(await page.$$eval('main img', (imgs) => imgs.length)).toBe(0);
    expect(dialogs).toEqual([]);

    expect(await page.$eval('#app', (e) => e.getAttribute('data-final'))).toBe('true');
    expect(problems).toEqual([]);
    mkdirSync(resolve(SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    process.stdout.write(`run page screenshot: ${SCREENSHOT}\n`);
    await page.close();
  });

  it("an output's download link returns the artifact's bytes under a safe file name; nothing else of the store is served", async () => {
    const { page } = await watchedPage(browser);
    await page.goto(pageUrl(head.workflowId), { waitUntil: 'networkidle0' });
    await page.waitForSelector('a.download');
    const hrefs = await page.$$eval('a.download', (as) =>
      as.map((a) => [a.textContent, (a as HTMLAnchorElement).href]),
    );
    await page.close();
    expect(hrefs.map((h) => h[0])).toEqual(['data', 'model']);
    const res = await fetch(hrefs[1]![1]!);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="model"');
    expect(await res.text()).toBe(`rows for ${engine.salt}\nlr 0.25\n`);

    // The digest of the stored log is in the store but is not an output of this run.
    const logDigest = stepOf(head.status, 'train').outcome!.logDigest!;
    const other = hrefs[1]![1]!.replace(/sha256:[0-9a-f]{64}/, logDigest);
    expect((await fetch(other)).status).toBe(404);
    expect((await fetch(hrefs[1]![1]!.replace(/sha256:[0-9a-f]{64}/, '..%2F..%2Fetc%2Fpasswd'))).status).toBe(404);

    // A blob damaged in the store is not handed out as if it were the output: the transfer breaks off.
    const hex = stepOf(head.status, 'train').outcome!.outputs.model!.digest.slice('sha256:'.length);
    const blob = join(engine.root, 'store', 'blobs', 'sha256', hex.slice(0, 2), hex);
    const good = readFileSync(blob);
    chmodSync(blob, 0o644);
    writeFileSync(blob, Buffer.from(good.toString().replace('rows', 'ROWS')));
    try {
      await expect(fetch(hrefs[1]![1]!).then((r) => r.arrayBuffer())).rejects.toThrow();
    } finally {
      writeFileSync(blob, good);
    }
  });

  it('an unsigned or wrongly signed link gets 404: the page, its data and its downloads', async () => {
    const signed = pageUrl(head.workflowId);
    const data = signed.replace('?sig=', '/data?sig=');
    const digest = stepOf(head.status, 'train').outcome!.outputs.model!.digest;
    const download = signed.replace('?sig=', `/artifacts/${digest}?sig=`);
    const html = { accept: 'text/html' };
    expect((await fetch(signed, { headers: html })).status).toBe(200);
    expect((await fetch(data)).status).toBe(200);
    expect((await fetch(download)).status).toBe(200);
    for (const url of [signed, data, download]) {
      expect((await fetch(url.replace(/\?sig=.*/, ''), { headers: html })).status, url).toBe(404);
      expect((await fetch(url.replace(/sig=.*/, `sig=${'A'.repeat(32)}`), { headers: html })).status, url).toBe(404);
      // Another run's signature does not open this one.
      expect(
        (await fetch(url.replace(/sig=.*/, `sig=${links.sign(`${head.workflowId}x`)}`), { headers: html })).status,
        url,
      ).toBe(404);
    }
    // A client that does not ask for HTML gets the Markdown report as before.
    expect(await (await fetch(signed)).text()).toMatch(/^# fit — run \S+: succeeded/);
  });

  it('follows a running run: the live log shows up while the step runs, and the page stops asking once the run is final', async () => {
    repo.write({
      '.trainyard/slow.yaml': `
name: slow
steps:
  wait:
    image: ${BUSYBOX_IMAGE}
    run: echo "first line ${engine.salt}"; sleep 8; echo done
    env: { SALT: "${engine.salt}" }
`,
    });
    repo.commit('slow');
    const { workflowId } = await engine.start(repo, '.trainyard/slow.yaml', { noCache: true });
    const { page, problems } = await watchedPage(browser);
    await page.goto(pageUrl(workflowId), { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(
      (salt) =>
        document.querySelector('details.log[data-step="wait"] pre')?.textContent?.includes(`first line ${salt}`),
      { timeout: 60_000 },
      engine.salt,
    );
    // Still running when the live line was shown: the page took it from the live log.
    expect(await page.$eval('header', (e) => e.textContent)).toContain('running');
    await page.waitForFunction(() => document.getElementById('app')?.getAttribute('data-final') === 'true', {
      timeout: 90_000,
    });
    expect(await page.$eval('header', (e) => e.textContent)).toContain('succeeded');
    expect(await page.$eval('details.log[data-step="wait"] pre', (e) => e.textContent)).toContain('done');
    // No more requests for data once final (watched for longer than one poll interval).
    let asked = 0;
    page.on('request', (r) => {
      if (r.url().includes('/data?')) asked += 1;
    });
    await new Promise((r) => setTimeout(r, 4000));
    expect(asked).toBe(0);
    expect(problems).toEqual([]);
    await page.close();
    await engine.result(workflowId);
  });
});
