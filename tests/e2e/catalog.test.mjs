// The event catalog end to end: each of the seed's eight events reaches its owner exactly as
// published; a publish the catalog refuses names the event and the field and delivers nothing;
// permissive mode; a deployment's own catalog; client events checked against it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { BINARY, SEED_EVENTS, api, connectUser, metric as readMetric, sleep, startServer, waitFor } from './harness.mjs';

describe('catalog', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server.stop(); });

  test('Catalog.EachSeedEvent_ReachesItsOwnerExactlyAndNoOneElse', async () => {
    const owner = await connectUser(server, 'owner');
    const other = await connectUser(server, 'other');
    for (const event of SEED_EVENTS) {
      const res = await api(server, 'POST', '/api/broadcast', { userId: 'owner', ...event });
      assert.deepEqual([res.status, res.body.delivered], [200, 1], event.type);
      assert.deepEqual(await owner.nextSeed(), event);
    }
    await sleep(50);
    assert.deepEqual(other.messages, []);
    await Promise.all([owner.close(), other.close()]);
  });

  const refusals = [
    ['UnknownType', { type: 'deal.riskk', payload: {} }, 'type'],
    ['MissingField', { type: 'thread.new', payload: { threadId: 't' } }, 'payload.accountId'],
    ['MisspeltField', { type: 'thread.new', payload: { threadId: 't', accountId: 'a', threadID: 't' } }, 'payload.threadID'],
    ['WrongEnum', { type: 'deal.risk', payload: { dealId: 'd', riskLevel: 'low', riskFlags: [], riskReason: 'r' } }, 'payload.riskLevel'],
    ['WrongArrayItem', { type: 'deal.risk', payload: { dealId: 'd', riskLevel: 'high', riskFlags: [1], riskReason: 'r' } }, 'payload.riskFlags[0]'],
    ['WrongNumber', { type: 'sync.progress', payload: { accountId: 'a', totalThreads: '5', processedThreads: 1 } }, 'payload.totalThreads'],
    ['BadDate', { type: 'task.created', payload: { taskId: 't', label: 'l', source: 's', dueDate: 'tomorrow' } }, 'payload.dueDate'],
    ['BadNestedObject', { type: 'ask.response', payload: { chunk: 'c', isComplete: true, sources: [{ id: 'x' }] } }, 'payload.sources[0].type'],
    ['ProtocolEvent', { type: 'connected', payload: { connectionId: '1', userId: 'u', heartbeatIntervalMs: 1, serverTime: 1 } }, 'type'],
  ];
  for (const [name, event, field] of refusals) {
    test(`Catalog.${name}_Is400NamingEventAndField`, async () => {
      const client = await connectUser(server, 'target');
      const res = await api(server, 'POST', '/api/broadcast', { userId: 'target', ...event });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.field, field);
      assert.equal(res.body.event, event.type);
      const all = await api(server, 'POST', '/api/broadcast-all', event);
      assert.equal(all.status, 400, 'broadcast-all is checked the same way');
      await sleep(30);
      assert.deepEqual(client.messages, [], 'nothing was delivered');
      await client.close();
    });
  }

  test('Catalog.ClientEvents_AreCheckedAgainstTheCatalog', async () => {
    const metric = (name) => readMetric(server, name);
    const client = await connectUser(server, 'sender');
    const valid = await metric('zena_client_messages_total');
    const invalid = await metric('zena_client_messages_invalid_total');
    client.send({ type: 'thread.view', payload: { threadId: 't1' } });
    client.send({ type: 'thread.view', payload: { threadId: 't1', extra: true } });
    client.send({ type: 'deal.risk', payload: {} }); // a server event, not a client one
    await waitFor(async () => (await metric('zena_client_messages_total')) === valid + 1
      && (await metric('zena_client_messages_invalid_total')) === invalid + 2, 3000, 'counted');
    assert.match(server.output(), /error=bad_payload field=payload\.extra/);
    await client.close();
  });

  test('Catalog.Command_PrintsTheShippedCatalog', async () => {
    const { stdout } = await promisify(execFile)(BINARY, ['catalog'], { env: { PATH: process.env.PATH } });
    const shipped = readFileSync(new URL('../../catalog/events.json', import.meta.url), 'utf8');
    assert.deepEqual(JSON.parse(stdout), JSON.parse(shipped));
  });
});

describe('catalog permissive mode', () => {
  let server;
  before(async () => { server = await startServer({ env: { ZENA_CATALOG_PERMISSIVE: 'true' } }); });
  after(async () => { await server.stop(); });

  test('Catalog.Permissive_DeliversUnknownTypesAndStillChecksKnownOnes', async () => {
    const client = await connectUser(server, 'p');
    const custom = { type: 'listing.viewed', payload: { anything: [1, { b: 2 }] } };
    assert.equal((await api(server, 'POST', '/api/broadcast', { userId: 'p', ...custom })).body.delivered, 1);
    assert.deepEqual(await client.nextSeed(), custom);
    const bad = await api(server, 'POST', '/api/broadcast', { userId: 'p', type: 'thread.new', payload: {} });
    assert.equal(bad.status, 400);
    await client.close();
  });
});

describe('a deployment catalog', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'zena-catalog-'));
  const own = JSON.parse(readFileSync(new URL('../../catalog/events.json', import.meta.url), 'utf8'));
  own.server['offer.received'] = { delivery: 'ordered', payload: { offerId: 'string', amount: 'number', currency: { enum: ['NZD', 'AUD'] } } };
  own.client['offer.ack'] = { payload: { offerId: 'string' } };
  const file = path.join(dir, 'events.json');
  writeFileSync(file, JSON.stringify(own));

  let server;
  before(async () => { server = await startServer({ env: { ZENA_CATALOG: file } }); });
  after(async () => { await server.stop(); });

  test('Catalog.OwnFile_AddsEventTypesWithoutRecompiling', async () => {
    const client = await connectUser(server, 'agent');
    const offer = { type: 'offer.received', payload: { offerId: 'o1', amount: 950000, currency: 'NZD' } };
    assert.equal((await api(server, 'POST', '/api/broadcast', { userId: 'agent', ...offer })).body.delivered, 1);
    assert.deepEqual(await client.nextSeed(), offer);
    const bad = await api(server, 'POST', '/api/broadcast', { userId: 'agent', ...offer, payload: { ...offer.payload, currency: 'USD' } });
    assert.deepEqual([bad.status, bad.body.field], [400, 'payload.currency']);
    client.send({ type: 'offer.ack', payload: { offerId: 'o1' } });
    await waitFor(() => server.output().includes('type=offer.ack'), 3000, 'the own client event accepted');
    assert.match(server.output(), new RegExp(`catalog loaded source=${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    await client.close();
  });

  test('Catalog.InvalidFile_StopsTheServerNamingThePlace', async () => {
    const broken = path.join(dir, 'broken.json');
    writeFileSync(broken, JSON.stringify({ server: { 'a.b': { payload: { x: 'strnig' } } }, client: {} }));
    const error = await promisify(execFile)(BINARY, [], { env: { PATH: process.env.PATH, ZENA_CATALOG: broken } })
      .then(() => assert.fail('should not start'), (e) => e);
    assert.equal(error.code, 2);
    assert.match(error.stderr, /server\.a\.b\.payload\.x: unknown type 'strnig'/);
    const missing = await promisify(execFile)(BINARY, [], { env: { PATH: process.env.PATH, ZENA_CATALOG: path.join(dir, 'nope.json') } })
      .then(() => assert.fail('should not start'), (e) => e);
    assert.match(missing.stderr, /cannot read catalog/);
  });
});
