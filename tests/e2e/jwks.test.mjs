// Asymmetric tokens from a JWKS file, against the real server: RS256, ES256 and EdDSA keys made
// here with Node's crypto, each pinned to its algorithm and chosen by kid; and the classic
// confusions refused with 1008: HS256 signed with the RSA public key, alg none, a stripped
// signature, an unknown kid, one key's kid with another algorithm, a signature by another key.
import assert from 'node:assert/strict';
import { createHmac, createSign, generateKeyPairSync, sign as edSign } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, startServer } from './harness.mjs';

const b64 = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');
const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });

// Signs header.claims with the algorithm's JWS encoding (ES256: r||s, not DER).
function jws(header, claims, signer) {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${signer(input).toString('base64url')}`;
}
const rs256 = (key) => (input) => createSign('SHA256').update(input).sign(key);
const es256 = (key) => (input) => createSign('SHA256').update(input).sign({ key, dsaEncoding: 'ieee-p1363' });
const eddsa = (key) => (input) => edSign(null, Buffer.from(input), key);
const claims = (sub) => ({ sub, iat: now(), exp: now() + 600 });

describe('tokens signed with public-key algorithms', () => {
  let server;
  before(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'zena-jwks-'));
    const jwks = { keys: [
      { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'rsa-1', use: 'sig', alg: 'RS256' },
      { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec-1' },
      { ...ed.publicKey.export({ format: 'jwk' }), kid: 'ed-1', alg: 'EdDSA' },
    ] };
    const file = path.join(dir, 'jwks.json');
    writeFileSync(file, JSON.stringify(jwks));
    // JWKS only: no HMAC secret at all.
    server = await startServer({ env: { ZENA_JWT_SECRET: '', ZENA_JWKS_FILE: file } });
  });
  after(async () => { await server.stop(); });

  async function accepted(token, user) {
    const client = new Client(server.wsUrl(token));
    const welcome = await client.next();
    assert.equal(welcome.type, 'connected');
    assert.equal(welcome.payload.userId, user);
    await client.close();
  }
  async function refused(token, reason) {
    const client = new Client(server.wsUrl(token));
    assert.deepEqual(await client.waitClosed(), { code: 1008, reason });
    assert.deepEqual(client.messages, []);
  }

  test('Jwks.RS256_ES256_EdDSA_EachVerifyWithTheirKey', async () => {
    await accepted(jws({ alg: 'RS256', kid: 'rsa-1' }, claims('rsa-user'), rs256(rsa.privateKey)), 'rsa-user');
    await accepted(jws({ alg: 'ES256', kid: 'ec-1' }, claims('ec-user'), es256(ec.privateKey)), 'ec-user');
    await accepted(jws({ alg: 'EdDSA', kid: 'ed-1' }, claims('ed-user'), eddsa(ed.privateKey)), 'ed-user');
  });

  test('Jwks.HS256SignedWithThePublicKey_IsRefused', async () => {
    const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
    const token = jws({ alg: 'HS256', kid: 'rsa-1' }, claims('mallory'), (input) => createHmac('sha256', pem).update(input).digest());
    await refused(token, 'token algorithm not allowed');
  });

  test('Jwks.AlgNone_IsRefused', async () => {
    await refused(`${b64({ alg: 'none', kid: 'rsa-1' })}.${b64(claims('mallory'))}.`, 'token algorithm not allowed');
  });

  test('Jwks.StrippedSignature_IsRefused', async () => {
    const [h, c] = jws({ alg: 'RS256', kid: 'rsa-1' }, claims('mallory'), rs256(rsa.privateKey)).split('.');
    await refused(`${h}.${c}.`, 'token signature invalid');
  });

  test('Jwks.UnknownKid_IsRefused', async () => {
    await refused(jws({ alg: 'RS256', kid: 'rsa-9' }, claims('mallory'), rs256(rsa.privateKey)), 'token key unknown');
    await refused(jws({ alg: 'RS256' }, claims('mallory'), rs256(rsa.privateKey)), 'token key unknown');
  });

  test('Jwks.AnotherAlgorithmForTheKey_IsRefused', async () => {
    await refused(jws({ alg: 'ES256', kid: 'rsa-1' }, claims('mallory'), es256(ec.privateKey)), 'token algorithm not allowed');
    await refused(jws({ alg: 'RS256', kid: 'ec-1' }, claims('mallory'), rs256(rsa.privateKey)), 'token algorithm not allowed');
  });

  test('Jwks.SignedByAnotherKey_IsRefused', async () => {
    await refused(jws({ alg: 'RS256', kid: 'rsa-1' }, claims('mallory'), rs256(stranger.privateKey)), 'token signature invalid');
    // Claims changed after signing.
    const [h, , sig] = jws({ alg: 'EdDSA', kid: 'ed-1' }, claims('bob'), eddsa(ed.privateKey)).split('.');
    await refused(`${h}.${b64(claims('admin'))}.${sig}`, 'token signature invalid');
  });

  test('Jwks.ExpiredAsymmetricToken_IsRefused', async () => {
    await refused(jws({ alg: 'ES256', kid: 'ec-1' }, { sub: 'late', exp: now() - 3600 }, es256(ec.privateKey)), 'token expired');
  });
});

test('Jwks.BadKeySet_StopsTheServerWithAReason', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'zena-jwks-'));
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const cases = [
    [{ keys: [{ ...weak.publicKey.export({ format: 'jwk' }), kid: 'weak' }] }, /at least 2048 bits/],
    [{ keys: [{ ...ec.publicKey.export({ format: 'jwk' }), kid: 'x', alg: 'RS256' }] }, /alg RS256 does not fit/],
    [{ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }, /unsupported key/],
    [{ nokeys: [] }, /not a JWKS/],
  ];
  for (const [set, reason] of cases) {
    const file = path.join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify(set));
    await assert.rejects(startServer({ env: { ZENA_JWKS_FILE: file } }), reason);
  }
});
