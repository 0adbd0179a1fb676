// Whatever a step prints, a successful step stays successful and nothing is lost: metric
// series travel through the artifact store by digest, never through Temporal payloads
// (which refuse anything over 2 MB with TMPRL1103), and every value keeps its exact form.
// Real Temporal dev server, real podman containers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LineageDoc } from '../../activities/lineage/document.js';
import { sha256Bytes } from '../../activities/store/digest.js';
import type { MetricSample } from '../../model/types.js';
import { lineageSchemaErrors } from '../lineage/schema.js';
import { BUSYBOX_IMAGE, PYTHON_IMAGE, startEngine, stepOf, type Engine, type GitRepo } from './harness.js';

let engine: Engine;
beforeAll(async () => {
  engine = await startEngine();
});
afterAll(async () => {
  await engine?.stop();
});

const pipeline = (salt: string) => `
name: chatty
steps:
  wide:
    image: ${PYTHON_IMAGE}
    run: python3 src/wide.py
    env: { SALT: "${salt}" }
  long:
    image: ${PYTHON_IMAGE}
    run: python3 src/long.py
    env: { SALT: "${salt}" }
`;

/** Pseudo-random but exact in Python and JavaScript alike (integer arithmetic, one correctly rounded division). */
const valueOf = (i: number, k: number): number => (((i * 100 + k) * 2654435761) % 1000003) / 1000003;

// 5,000 lines of 100 keys each (about 14 MB of samples that compress badly), the first two
// with what Python writes for values a double cannot hold.
const WIDE = `
import json
print(json.dumps({"loss": float("nan"), "grad": float("inf"), "neg": float("-inf")}))
print('{"huge": 1e400, "id": 12345678901234567890, "odd": 9007199254740993}')
for i in range(5000):
    print(json.dumps({f"metric_{k:03d}": ((i * 100 + k) * 2654435761 % 1000003) / 1000003 for k in range(100)}))
print("{'loss': 0.5}")
`;

// 200,000 samples of a loss that falls, then diverges.
const LONG = `
import sys
w = sys.stdout.write
for i in range(200000):
    w('{"step": %d, "loss": %r}\\n' % (i, 1.0 / (1 + i / 1000)))
print('{"step": 200000, "loss": NaN}')
`;

async function blobText(digest: string): Promise<string> {
  return (await engine.store.getBytes(digest)).toString('utf8');
}

describe('a step that prints a lot of metrics', () => {
  let repo: GitRepo;
  let doc: LineageDoc;
  let report: string;
  let state: string;
  let wide: ReturnType<typeof stepOf>;
  let long: ReturnType<typeof stepOf>;

  beforeAll(async () => {
    repo = engine
      .repo()
      .write({ '.trainyard/chatty.yaml': pipeline(engine.salt), 'src/wide.py': WIDE, 'src/long.py': LONG });
    repo.commit();
    const s = await engine.run(repo, '.trainyard/chatty.yaml');
    state = s.state;
    wide = stepOf(s, 'wide');
    long = stepOf(s, 'long');
    doc = (await engine.store.getRecord<LineageDoc>(s.lineageKey!))!;
    report = (await engine.store.getRecord<{ markdown: string }>(s.reportKey!))!.markdown;
  }, 600_000);

  it('succeeds with 5,000 lines of 100 keys and with 200,000 samples', () => {
    expect([state, wide.state, long.state, wide.message ?? '', long.message ?? '']).toEqual([
      'succeeded',
      'succeeded',
      'succeeded',
      '',
      '',
    ]);
    expect(wide.outcome!.metrics).toMatchObject({ samples: 5002, names: 106 });
    expect(long.outcome!.metrics).toMatchObject({
      samples: 200_001,
      names: 2,
      last: { step: 200_000, loss: { number: 'NaN' } },
    });
  });

  it('keeps only references and a bounded summary in the workflow (the series is in the store)', () => {
    const m = wide.outcome!.metrics!;
    expect(Object.keys(m.last)).toHaveLength(8);
    expect(JSON.stringify(m).length).toBeLessThan(2000);
    expect(m.series?.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(m.rejected).toEqual({ lines: 1, reason: expect.stringMatching(/^line 5003: .*double-quoted/) });
  });

  it('stores every sample with every value exactly as printed', async () => {
    const lines = (await blobText(wide.outcome!.metrics!.series!.digest)).trimEnd().split('\n');
    expect(lines).toHaveLength(5002);
    const samples = lines.map((l) => JSON.parse(l) as MetricSample);
    expect(samples[0]!.values).toEqual({
      loss: { number: 'NaN' },
      grad: { number: 'Infinity' },
      neg: { number: '-Infinity' },
    });
    expect(samples[1]!.values).toEqual({
      huge: { number: '1e400' },
      id: { number: '12345678901234567890' },
      odd: { number: '9007199254740993' },
    });
    expect(Object.keys(samples[2]!.values)).toHaveLength(100);
    for (const i of [0, 1234, 4999]) {
      expect(samples[2 + i]!.values).toEqual(
        Object.fromEntries(
          Array.from({ length: 100 }, (_, k) => [`metric_${String(k).padStart(3, '0')}`, valueOf(i, k)]),
        ),
      );
    }
    const longLines = (await blobText(long.outcome!.metrics!.series!.digest)).trimEnd().split('\n');
    expect(longLines).toHaveLength(200_001);
    expect(JSON.parse(longLines[123_456]!)).toMatchObject({
      values: { step: 123_456, loss: 1.0 / (1 + 123_456 / 1000) },
    });
  });

  it('the lineage document references the full series by digest, summarises it, and conforms to the schema', () => {
    expect(lineageSchemaErrors(doc)).toEqual([]);
    const l = doc.steps.find((s) => s.name === 'long')!.metrics!;
    expect(l.series?.digest).toBe(long.outcome!.metrics!.series!.digest);
    expect(l.samples).toBe(200_001);
    const loss = l.metrics.find((m) => m.name === 'loss')!;
    expect(loss).toMatchObject({
      count: 200_001,
      finite: 200_000,
      downsampled: true,
      last: { number: 'NaN' },
      nonFinite: [{ kind: 'NaN', count: 1 }],
    });
    expect(loss.points.length).toBeLessThanOrEqual(60);
    const w = doc.steps.find((s) => s.name === 'wide')!.metrics!;
    expect(w.metrics.find((m) => m.name === 'id')?.last).toEqual({ number: '12345678901234567890' });
    expect(w.rejected?.lines).toBe(1);
  });

  it('the report charts the long series downsampled and says so, and shows NaN, Infinity and exact numbers', () => {
    expect(report).toMatch(
      /`long`: 200,001 samples; charts and trends are downsampled: each shows at most 60 points, each the mean of consecutive samples/,
    );
    expect(report).toContain(long.outcome!.metrics!.series!.uri);
    expect(report).toMatch(/\| `long` \| loss \| NaN \|/);
    expect(report).toMatch(/⚠️ `long` `loss`: NaN ×1/);
    expect(report).toMatch(/⚠️ `wide` `grad`: Infinity ×1/);
    expect(report).toMatch(/⚠️ `wide` `huge`: 1e400 \(beyond the double range\) ×1/);
    expect(report).toMatch(/\| `wide` \| id \| 12345678901234567890 \|/);
    expect(report).toMatch(/⚠️ `wide`: 1 stdout line looks like a metrics sample but was not read/);
    expect(report).toMatch(/xychart-beta\n {2}title "long: loss"/);
  });

  it('a cache hit serves the same metrics (by reference)', async () => {
    const again = await engine.run(repo, '.trainyard/chatty.yaml');
    expect(stepOf(again, 'long').state).toBe('cached');
    expect(stepOf(again, 'long').outcome!.metrics).toEqual(long.outcome!.metrics);
    expect(await engine.containers()).toEqual([]);
  }, 300_000);
});

describe('a repository with thousands of files', () => {
  it('runs many steps whose code is the whole tree (the code-file listings travel by digest)', async () => {
    // 1,990 files with long, incompressible paths (the listing keeps up to 2,000) and 20
    // steps each keyed on the whole tree: listed inline, the prepared batch would be about
    // 8 MB of paths and digests.
    const name = (i: number): string => `data/${sha256Bytes(`a${i}`).slice(7)}/${sha256Bytes(`b${i}`).slice(7)}.txt`;
    const files: Record<string, string> = {};
    for (let i = 0; i < 1990; i += 1) files[name(i)] = `${i}\n`;
    const steps = Array.from(
      { length: 20 },
      (_, i) =>
        `  s${i}:\n    image: ${BUSYBOX_IMAGE}\n    run: "true"\n    env: { SALT: "${engine.salt}", N: "${i}" }\n`,
    ).join('');
    const repo = engine.repo().write({ ...files, '.trainyard/tree.yaml': `name: tree\nsteps:\n${steps}` });
    repo.commit();
    const s = await engine.run(repo, '.trainyard/tree.yaml', { options: { parallelism: 4 } });
    expect(
      s.steps.filter((x) => x.state !== 'succeeded').map((x) => `${x.name}: ${x.state} ${x.message ?? ''}`),
    ).toEqual([]);
    // The next miss still names the changed file (the listing was kept, by reference).
    repo.write({ [name(7)]: 'changed\n' }).commit();
    const again = await engine.run(repo, '.trainyard/tree.yaml', { options: { parallelism: 4 } });
    expect(stepOf(again, 's3').cache?.reason).toBe(`ran: code changed (${name(7)})`);
  }, 600_000);
});
