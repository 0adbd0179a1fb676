// Plain text of a lineage answer (query.ts) for the CLI; user-controlled text is made safe for a terminal.
import type { InputOrigin } from '../../model/types.js';
import { terminalText } from '../usertext.js';
import type { LineageAnswer } from './query.js';

/** Strips terminal control sequences and line breaks from user-controlled text; bidi controls shown. */
const plain = terminalText;

function originText(o: InputOrigin): string {
  switch (o.kind) {
    case 'step':
      return `step ${plain(o.step)}.${plain(o.output)}`;
    case 'uri':
      return plain(o.uri);
    case 'repo':
      return `repo ${plain(o.path)} @ ${plain(o.commit.slice(0, 12))}`;
  }
}

export function formatLineageAnswer(answer: LineageAnswer): string {
  const lines: string[] = [];
  switch (answer.kind) {
    case 'not_found':
      return `not found: ${plain(answer.message)}`;
    case 'ambiguous':
      lines.push(`${plain(answer.query)} matches ${answer.candidates.length} artifacts; give more digits:`);
      for (const c of answer.candidates) lines.push(`  ${c}`);
      return lines.join('\n');
    case 'run': {
      const t = answer.totals;
      lines.push(`run ${plain(answer.runId)}: ${answer.conclusion}`);
      lines.push(
        `  pipeline  ${plain(answer.pipeline.name)} (${plain(answer.pipeline.file)}, ${answer.pipeline.digest})`,
      );
      lines.push(
        `  commit    ${plain(answer.commit)}${answer.dirtyBase ? ` (dirty snapshot of ${plain(answer.dirtyBase)})` : ''}`,
      );
      lines.push(`  time      ${plain(answer.startedAt)} → ${plain(answer.finishedAt)}`);
      const params = Object.entries(answer.params).map(([k, v]) => `${plain(k)}=${plain(JSON.stringify(v))}`);
      if (params.length) lines.push(`  params    ${params.join(' ')}`);
      lines.push(`  steps     ${t.steps} (ran ${t.ran}, cached ${t.cached}, failed ${t.failed}, skipped ${t.skipped})`);
      for (const s of answer.steps) {
        lines.push(
          `  - ${plain(s.name)}: ${s.state}${s.cacheDecision ? ` [cache ${s.cacheDecision}]` : ''}${s.reason ? ` — ${plain(s.reason)}` : ''}`,
        );
        if (s.producedBy && s.producedBy.runId !== answer.runId) {
          lines.push(
            `      reused from run ${plain(s.producedBy.runId)} step ${plain(s.producedBy.step)} @ ${plain(s.producedBy.commit.slice(0, 12))}`,
          );
        }
        for (const [n, d] of Object.entries(s.inputs)) lines.push(`      in  ${plain(n)} ${d}`);
        for (const [n, d] of Object.entries(s.outputs)) lines.push(`      out ${plain(n)} ${d}`);
      }
      return lines.join('\n');
    }
    case 'artifact': {
      lines.push(
        `artifact ${answer.digest}${answer.size !== null ? ` (${answer.artifactKind}, ${answer.size} bytes)` : ''}`,
      );
      if (answer.uri) lines.push(`  at ${plain(answer.uri)}`);
      const made = answer.producers.filter((p) => !p.reused);
      const reused = answer.producers.filter((p) => p.reused);
      lines.push(made.length ? 'produced by:' : 'produced by: (no run in this store executed it)');
      for (const p of made) {
        lines.push(
          `  run ${plain(p.runId)} (${plain(p.pipeline)} @ ${plain(p.commit.slice(0, 12))}, ${plain(p.finishedAt)}) step ${plain(p.step)} output ${plain(p.output)}`,
        );
        if (p.image) lines.push(`    image ${plain(p.image)}`);
        if (p.inputs.length === 0) lines.push('    from no inputs');
        for (const i of p.inputs) lines.push(`    from ${plain(i.name)} ${i.digest} ← ${originText(i.origin)}`);
      }
      if (reused.length) {
        lines.push('reused (cache) by:');
        for (const p of reused) {
          const src = p.producedBy ? ` from run ${plain(p.producedBy.runId)}` : '';
          lines.push(
            `  run ${plain(p.runId)} (${plain(p.pipeline)} @ ${plain(p.commit.slice(0, 12))}) step ${plain(p.step)} output ${plain(p.output)}${src}`,
          );
        }
      }
      lines.push(answer.consumers.length ? 'consumed by:' : 'consumed by: (nothing yet)');
      for (const c of answer.consumers) {
        lines.push(
          `  run ${plain(c.runId)} (${plain(c.pipeline)} @ ${plain(c.commit.slice(0, 12))}, ${plain(c.finishedAt)}) step ${plain(c.step)} input ${plain(c.input)} [${c.state}]`,
        );
      }
      return lines.join('\n');
    }
  }
}
