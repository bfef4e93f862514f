// Numbers in a publish body that JSON allows but the server cannot hold (integers past 64 bits,
// 10,000 digits, past a double): refused with the field that holds them and why, not as
// "body is not valid JSON"; the edges of what fits are delivered.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, connectUser, startServer } from './harness.mjs';

const raw = (server, route, text) => api(server, 'POST', route, undefined, { raw: text });

describe('numbers in publish bodies', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server.stop(); });

  test('ApiNumbers.OutOfRange_NamesTheFieldAndTheReason', async () => {
    const cases = [
      ['18446744073709551616', /is an integer out of range \(integers must fit in 64 bits/],
      ['-9223372036854775809', /is an integer out of range/],
      ['9'.repeat(10000), /is an integer out of range/],
      ['1e400', /is a number out of range \(larger than a 64-bit double can hold\)/],
    ];
    for (const [number, reason] of cases) {
      const body = `{"userId":"u1","type":"sync.progress","payload":{"accountId":"a","totalThreads":${number},"processedThreads":1}}`;
      const res = await raw(server, '/api/broadcast', body);
      assert.equal(res.status, 400, number.slice(0, 20));
      assert.equal(res.body.field, 'payload.totalThreads');
      assert.match(res.body.error, reason);
      assert.match(res.body.error, /^payload\.totalThreads /);
    }
    const res = await raw(server, '/api/batch',
      `{"items":[{"all":true,"type":"sync.started","payload":{"accountId":"a","provider":"gmail"},"extra":[0,${'1'.repeat(30)}]}]}`);
    assert.equal(res.status, 400);
    assert.equal(res.body.field, 'items[0].extra[1]');
  });

  test('ApiNumbers.LargestThatFit_AreDelivered', async () => {
    const client = await connectUser(server, 'counter');
    const body = '{"userId":"counter","type":"sync.progress","payload":{"accountId":"a","totalThreads":18446744073709551615,"processedThreads":-9223372036854775808}}';
    const res = await raw(server, '/api/broadcast', body);
    assert.equal(res.status, 200);
    await client.next();
    await client.close();
  });
});
