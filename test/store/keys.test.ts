// The record layout (activities/store/keys.ts): a store written by an earlier Trainyard keeps
// its records under these keys, so a builder that changed its output would lose every run's
// lineage, index and cache entries on upgrade. Each builder is also checked against the
// store's own key rules, so no builder can produce a key the store refuses.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  assertRecordKey,
  assertRecordPrefix,
  branchIndexPrefix,
  cacheRecordKey,
  consumedIndexPrefix,
  digestPrefixIndexKey,
  digestPrefixIndexPrefix,
  kubernetesResultKey,
  latestRecordKey,
  lineageKeyOf,
  producedIndexPrefix,
  reportKeyOf,
  runIdOfKey,
  runIdOfLineageKey,
  runIndexKey,
} from '../../activities/store/keys.js';

const HEX = 'ab12'.repeat(16);
const DIGEST = `sha256:${HEX}`;
const RUN = 'run-20260101-abc.1';

describe('record keys', () => {
  it('keep the layout that stores written by earlier versions hold', () => {
    const branchHash = createHash('sha256').update('acme/flowers\ntrain\nmain').digest('hex').slice(0, 32);
    expect({
      lineage: lineageKeyOf(RUN),
      report: reportKeyOf(RUN),
      runIndex: runIndexKey(RUN),
      produced: producedIndexPrefix(DIGEST),
      consumed: consumedIndexPrefix(DIGEST),
      digestPrefix: digestPrefixIndexKey(DIGEST),
      digestPrefixQuery: digestPrefixIndexPrefix(HEX.slice(0, 20)),
      branch: branchIndexPrefix('acme/flowers', 'train', 'main'),
      cache: cacheRecordKey(DIGEST),
      cacheBareHex: cacheRecordKey(HEX),
      latest: latestRecordKey('train', 'prepare'),
      kubernetes: kubernetesResultKey('trainyard-job-1', 'exec-run'),
    }).toEqual({
      lineage: `runs/${RUN}/lineage`,
      report: `runs/${RUN}/report`,
      runIndex: `index/runs/${RUN}`,
      produced: `index/produced/${DIGEST}/`,
      consumed: `index/consumed/${DIGEST}/`,
      digestPrefix: `index/digest-prefix/${HEX.slice(0, 12)}/${DIGEST}`,
      digestPrefixQuery: `index/digest-prefix/${HEX.slice(0, 12)}/`,
      branch: `index/branch/${branchHash}/`,
      cache: `cache/${HEX}`,
      cacheBareHex: `cache/${HEX}`,
      latest: 'cache-latest/train/prepare',
      kubernetes: 'kubernetes/results/trainyard-job-1/exec-run',
    });
  });

  it('builds keys and prefixes the store accepts, and reads the run back out of its keys', () => {
    for (const key of [
      lineageKeyOf(RUN),
      reportKeyOf(RUN),
      runIndexKey(RUN),
      digestPrefixIndexKey(DIGEST),
      `${producedIndexPrefix(DIGEST)}${RUN}`,
      cacheRecordKey(DIGEST),
      latestRecordKey('train', 'prepare'),
    ])
      expect(() => assertRecordKey(key), key).not.toThrow();
    for (const prefix of [
      producedIndexPrefix(DIGEST),
      consumedIndexPrefix(DIGEST),
      digestPrefixIndexPrefix(HEX),
      branchIndexPrefix('a repo with spaces/../', 'p', 'feature/x'),
    ])
      expect(() => assertRecordPrefix(prefix), prefix).not.toThrow();
    expect(runIdOfKey(reportKeyOf(RUN))).toBe(RUN);
    expect(runIdOfLineageKey(lineageKeyOf(RUN))).toBe(RUN);
    expect(runIdOfLineageKey(reportKeyOf(RUN))).toBeUndefined();
    expect(runIdOfKey(runIndexKey(RUN))).toBeUndefined();
  });
});
