// GET /runs/<id>?sig=… : a run's page. A browser (Accept: text/html) gets the HTML page
// (app/page/: the shell, which fetches /runs/<id>/data?sig=… and draws header, steps,
// graph, charts, outputs, parameters and logs, polling while the run goes on); any other
// client gets the Markdown it always got: the final report, or the live step table. Outputs
// download from /runs/<id>/artifacts/<digest>?sig=…. A verdict's page (`verdict:` ids) is
// its Markdown, as HTML for a browser. The signature makes every one of these links a
// capability: ids are guessable, signatures are not; a wrong one gets 404 like an unknown run.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RunLinks } from '../../activities/githost/links.js';
import { progressTitle, stepTable } from '../../activities/githost/text.js';
import type { Intake } from '../../activities/intake/context.js';
import { markdownToHtml } from '../../activities/report/html.js';
import { isDigest } from '../../activities/store/digest.js';
import { neutraliseBidi } from '../../activities/usertext.js';
import { pageHeaders, sendAsset } from '../page/assets.js';
import { lineageFor, runArtifacts, runPageData } from '../page/data.js';
import { sendArtifact } from '../page/download.js';
import { sendText as sendRaw } from './http.js';

/** Everything on a run page can quote users: neutralised on the way out. */
const sendText = (res: ServerResponse, status: number, text: string): void =>
  sendRaw(res, status, neutraliseBidi(text));

/** The page's data; bidirectional controls in it (names, params, log lines) are shown as `[U+202E]`, as on every run page. */
function sendPageJson(res: ServerResponse, body: unknown): void {
  // The replacement has no quote or backslash: the JSON stays valid.
  const text = neutraliseBidi(JSON.stringify(body));
  res.writeHead(200, {
    ...pageHeaders('application/json; charset=utf-8', Buffer.byteLength(text)),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** A Markdown document as a small HTML page (a verdict): markdown-it, raw HTML off; the title is Markdown too. */
function sendMarkdownPage(res: ServerResponse, markdown: string): void {
  const html = `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Trainyard</title><link rel="stylesheet" href="/assets/run.css"></head>\n<body><main>${markdownToHtml(markdown)}</main></body></html>\n`;
  res.writeHead(200, {
    ...pageHeaders('text/html; charset=utf-8', Buffer.byteLength(html)),
    'cache-control': 'no-store',
  });
  res.end(html);
}

const wantsHtml = (req: IncomingMessage): boolean => /\btext\/html\b/.test(req.headers.accept ?? '');

/** `/runs/<id>[/<view>[/<arg>]]`: the id is one path segment (a `/` in it is sent as %2F). */
function parsePath(pathname: string): { id: string; view: string; arg: string | undefined } | undefined {
  const [rawId, view = '', arg, ...rest] = pathname.slice('/runs/'.length).split('/');
  if (!rawId || rest.length) return undefined;
  try {
    return { id: decodeURIComponent(rawId), view, arg: arg === undefined ? undefined : decodeURIComponent(arg) };
  } catch {
    return undefined;
  }
}

/** Any replica serves any run: the page is read from the store and Temporal, the signature checked with the shared TRAINYARD_LINK_SECRET. */
export function runPageHandler(intake: Pick<Intake, 'records' | 'starter'>, links: RunLinks) {
  const store = intake.records.store;
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const p = parsePath(url.pathname);
    if (!p) return sendText(res, 404, 'no such page\n');
    const { id, view, arg } = p;
    const sig = url.searchParams.get('sig') ?? '';
    if (!links.verify(id, sig)) return sendText(res, 404, 'no such run\n');
    if (id.startsWith('verdict:')) {
      if (view !== '') return sendText(res, 404, 'no such page\n');
      const v = await intake.records.getVerdict(id);
      if (!v) return sendText(res, 404, 'no such check\n');
      const md = `# ${v.title}\n\n${v.summary}\n`;
      return wantsHtml(req) ? sendMarkdownPage(res, md) : sendText(res, 200, md);
    }
    const meta = await intake.records.getRun(id);
    if (view === '' && wantsHtml(req)) {
      // The shell is the same for every run; the data comes from /data, which says when a run is unknown.
      await sendAsset(res, 'run.html', { noStore: true });
      return;
    }
    if (view === '') {
      if (meta?.final) return sendText(res, 200, meta.final.report);
      const status = await intake.starter.status(id).catch(() => undefined);
      if (!status) return sendText(res, 404, 'no such run\n');
      const head = `# ${status.pipeline} — run ${status.runId}: ${status.state}\n\n${progressTitle(status)}\n\n`;
      return sendText(res, 200, `${head}${stepTable(status)}\n`);
    }
    if (view !== 'data' && view !== 'artifacts') return sendText(res, 404, 'no such page\n');
    // A finished run with a run record is answered from the store alone; Temporal is asked otherwise.
    const status = meta?.final ? undefined : await intake.starter.status(id).catch(() => undefined);
    const doc = await lineageFor(store, meta, status);
    if (view === 'data') {
      const artifactHref = (digest: string): string =>
        `/runs/${encodeURIComponent(id)}/artifacts/${digest}?sig=${encodeURIComponent(sig)}`;
      const data = await runPageData(id, { store, meta, status, artifactHref }, doc);
      return data ? sendPageJson(res, data) : sendText(res, 404, 'no such run\n');
    }
    // Only an output of this run, by its recorded digest: never a path or name from the request.
    const art = arg !== undefined && isDigest(arg) ? runArtifacts(doc, status).get(arg) : undefined;
    if (!art || art.kind !== 'file') return sendText(res, 404, 'no such artifact in this run\n');
    await sendArtifact(res, store, { digest: arg!, size: art.size, name: art.name });
  };
}
