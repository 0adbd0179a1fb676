// GET /runs/<id>?sig=… : the run's live step table or final report (or a verdict's full
// text), as plain Markdown text. The signature makes the link a capability: ids are
// guessable, signatures are not.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RunLinks } from '../../activities/githost/links.js';
import { progressTitle, stepTable } from '../../activities/githost/text.js';
import type { Intake } from '../../activities/intake/context.js';
import { neutraliseBidi } from '../../activities/usertext.js';
import { sendText as sendRaw } from './http.js';

/** Everything on a run page can quote users: neutralised on the way out. */
const sendText = (res: ServerResponse, status: number, text: string): void => sendRaw(res, status, neutraliseBidi(text));

/** Any replica serves any run: the page is read from the store and Temporal, the signature checked with the shared TRAINYARD_LINK_SECRET. */
export function runPageHandler(intake: Pick<Intake, 'records' | 'starter'>, links: RunLinks) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let id: string;
    try {
      id = decodeURIComponent(url.pathname.slice('/runs/'.length));
    } catch {
      return sendText(res, 400, 'bad run id\n');
    }
    if (!links.verify(id, url.searchParams.get('sig') ?? '')) return sendText(res, 404, 'no such run\n');
    if (id.startsWith('verdict:')) {
      const v = await intake.records.getVerdict(id);
      return v ? sendText(res, 200, `# ${v.title}\n\n${v.summary}\n`) : sendText(res, 404, 'no such check\n');
    }
    const meta = await intake.records.getRun(id);
    if (meta?.final) return sendText(res, 200, meta.final.report);
    const status = await intake.starter.status(id).catch(() => undefined);
    if (!status) return sendText(res, 404, 'no such run\n');
    const head = `# ${status.pipeline} — run ${status.runId}: ${status.state}\n\n${progressTitle(status)}\n\n`;
    return sendText(res, 200, `${head}${stepTable(status)}\n`);
  };
}
