// HS256 verification for the peers, as zena-realtime checks it: the signature, the algorithm
// pinned, `exp`, and the user in `sub`. Both peers use it, so the connect rate compares like
// with like.
import { createHmac, timingSafeEqual } from 'node:crypto';

export function verifyJwt(token, secret) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  const [head, body, signature] = parts;
  const expected = createHmac('sha256', secret).update(`${head}.${body}`).digest();
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  const header = JSON.parse(Buffer.from(head, 'base64url').toString());
  if (header.alg !== 'HS256') return null;
  const claims = JSON.parse(Buffer.from(body, 'base64url').toString());
  if (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now()) return null;
  return typeof claims.sub === 'string' && claims.sub ? claims.sub : null;
}

export function bearer(value) {
  return value && value.startsWith('Bearer ') ? value.slice(7) : '';
}

// {"type":...,"payload":...} as zena-realtime frames it.
export const envelope = (type, payload) => JSON.stringify({ type, payload });
