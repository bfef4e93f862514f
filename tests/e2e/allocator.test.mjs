// The release binary runs on jemalloc (docs/decisions.md, "jemalloc"); sanitizer and fuzz builds
// keep glibc's malloc, whose calls the sanitizers intercept. The start log names the allocator in
// effect; tests/CMakeLists.txt tells this test which one the build linked (ZENA_ALLOCATOR), and
// the process's own memory map is the evidence the log is checked against.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { api, connectUser, startServer } from './harness.mjs';

test('Allocator.TheStartLogNamesTheOneInTheProcess_AndItServes', async () => {
  const expected = process.env.ZENA_ALLOCATOR ?? 'jemalloc';
  const server = await startServer({ env: { ZENA_THREADS: '1' } });
  try {
    const m = server.output().match(/memory allocator=(\S+)(?: version=(\S+))?/);
    assert.ok(m, `no allocator line in:\n${server.output()}`);
    assert.equal(m[1], expected);
    const maps = readFileSync(`/proc/${server.child.pid}/maps`, 'utf8');
    assert.equal(/libjemalloc\.so/.test(maps), expected === 'jemalloc');
    if (expected === 'jemalloc') {
      assert.match(m[2], /^\d+\.\d+\.\d+-/);
      // Freed pages go back on time, not only when a thread allocates again.
      assert.match(server.output(), /memory allocator=jemalloc version=\S+ background_thread=true/);
    }

    // Frames from a few bytes to past the 64 KiB size class, to every connection, in order.
    const clients = await Promise.all(Array.from({ length: 20 }, (_, i) => connectUser(server, `a${i}`)));
    const sizes = [3, 900, 40000, 200000, 17];
    for (const [i, size] of sizes.entries()) {
      const res = await api(server, 'POST', '/api/broadcast-all', {
        type: 'ask.response', payload: { chunk: `${i}:${'y'.repeat(size)}`, isComplete: false },
      });
      assert.equal(res.status, 200);
    }
    for (const client of clients) {
      for (const [i, size] of sizes.entries()) {
        const got = await client.next(5000);
        assert.equal(got.payload.chunk, `${i}:${'y'.repeat(size)}`);
      }
    }
    await Promise.all(clients.map((c) => c.close()));
  } finally {
    await server.stop();
  }
});

test('Allocator.AnOperatorsMallocConf_DecidesTheBackgroundThread', async () => {
  const expected = process.env.ZENA_ALLOCATOR ?? 'jemalloc';
  const server = await startServer({ env: { ZENA_THREADS: '1', MALLOC_CONF: 'background_thread:false' } });
  try {
    // glibc (a sanitizer build) ignores MALLOC_CONF and has no such thread to report.
    const line = expected === 'jemalloc'
      ? /memory allocator=jemalloc version=\S+ background_thread=false\n/
      : /memory allocator=glibc\n/;
    assert.match(server.output(), line);
  } finally {
    await server.stop();
  }
});
