// The default thread count (server.threads = 0) follows the CPUs the process may use: its
// affinity mask (run under `taskset`) and the cgroup v2 quota (a fake cgroup tree under
// server.cgroup_root). The start log says how many and why.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { api, startServer } from './harness.mjs';

const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

// The server under `taskset -c 0`: one CPU of the machine's.
const startUnderTaskset = (env) => startServer({ env, wrapper: ['taskset', '-c', '0'] });

// This process's cgroup v2 path ("0::<path>"), which the server, its child, shares.
function ownCgroup() {
  const line = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'));
  return line ? line.slice(3).trim() : undefined;
}

// A fake cgroup root: { '<cgroup path>': '<cpu.max text>' }.
function fakeCgroupRoot(files) {
  const root = mkdtempSync(path.join(tmpdir(), 'zena-cgroup-'));
  for (const [cgroup, text] of Object.entries(files)) {
    const dir = path.join(root, cgroup);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'cpu.max'), text);
  }
  return root;
}

function startLine(output) {
  const m = output.match(/event loops threads=(\d+) reason="([^"]*)"/);
  assert.ok(m, `the start log names the thread count:\n${output}`);
  return { threads: Number(m[1]), reason: m[2] };
}

async function statsThreads(server) {
  const stats = await api(server, 'GET', '/api/stats');
  assert.equal(stats.status, 200);
  return stats.body.threads;
}

test('Threads.Default_UnderTaskset_OneLoopPerAllowedCpu', { skip: !hasTaskset && 'taskset not found' }, async () => {
  // An empty cgroup root: only the affinity mask limits.
  const root = fakeCgroupRoot({});
  const server = await startUnderTaskset({ ZENA_THREADS: '0', ZENA_CGROUP_ROOT: root });
  try {
    const { threads, reason } = startLine(server.output());
    assert.equal(threads, 1);
    assert.match(reason, /^affinity 1 of \d+ CPUs$/);
    assert.equal(await statsThreads(server), 1);
    assert.doesNotMatch(server.output(), /exceed the CPUs/);
  } finally {
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

test('Threads.Explicit_AboveTheAllowedCpus_StartsWithAWarning', { skip: !hasTaskset && 'taskset not found' }, async () => {
  const root = fakeCgroupRoot({});
  const server = await startUnderTaskset({ ZENA_THREADS: '3', ZENA_CGROUP_ROOT: root });
  try {
    const { threads, reason } = startLine(server.output());
    assert.equal(threads, 3);
    assert.equal(reason, 'server.threads');
    assert.match(server.output(), /warning event loops threads=3 exceed the CPUs this process may use cpus=1 /);
    assert.equal(await statsThreads(server), 3);
  } finally {
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

const cgroup = ownCgroup();
const noCgroupV2 = cgroup === undefined && 'no cgroup v2 line in /proc/self/cgroup';

test('Threads.Default_WithACgroupQuota_RoundsTheQuotaUp', { skip: noCgroupV2 }, async () => {
  // 1.5 CPUs -> 2 loops, unless the affinity mask allows fewer.
  const root = fakeCgroupRoot({ [cgroup]: '150000 100000\n' });
  const server = await startServer({ env: { ZENA_THREADS: '0', ZENA_CGROUP_ROOT: root } });
  try {
    const { threads, reason } = startLine(server.output());
    const expected = Math.min(2, availableParallelism());
    assert.equal(threads, expected);
    if (expected === 2) assert.equal(reason, 'cgroup cpu.max 150000/100000 -> 2');
    assert.equal(await statsThreads(server), expected);
  } finally {
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

test('Threads.Default_WithAParentsQuota_TheParentLimits', { skip: noCgroupV2 }, async () => {
  // The process's own cgroup has no limit; the root of the tree (its ancestor) allows half a CPU.
  const files = { '/': '50000 100000\n' };
  if (cgroup !== '/') files[cgroup] = 'max 100000\n';
  const root = fakeCgroupRoot(files);
  const server = await startServer({ env: { ZENA_THREADS: '0', ZENA_CGROUP_ROOT: root } });
  try {
    const { threads, reason } = startLine(server.output());
    assert.equal(threads, 1);
    assert.equal(reason, 'cgroup cpu.max 50000/100000 -> 1');
    assert.equal(await statsThreads(server), 1);
  } finally {
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  }
});
