// Throwaway certificate authorities for tests and benchmarks of TLS to the backend, made with the
// openssl CLI in `dir`: a CA (a self-signed P-256 certificate that may sign others) and server
// certificates it signs for the names a test chooses. Valid for a day; the caller removes `dir`.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const openssl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** Writes `<name>.pem` (the CA's certificate, for upstream.tls_ca_file) and `<name>.key` in `dir`. */
export function makeCa(dir, name) {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', `/CN=${name}`, '-keyout', path.join(dir, `${name}.key`), '-out', path.join(dir, `${name}.pem`));
  return path.join(dir, `${name}.pem`);
}

/**
 * A server certificate `name` for `san` (e.g. "IP:127.0.0.1,DNS:localhost"), signed by the CA
 * `ca` of makeCa; returns { key, cert } for node:https's createServer.
 */
export function makeLeaf(dir, name, ca, san) {
  const file = (suffix) => path.join(dir, `${name}${suffix}`);
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`,
    '-keyout', file('.key'), '-out', file('.csr'));
  writeFileSync(file('.ext'), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  openssl('x509', '-req', '-in', file('.csr'), '-CA', path.join(dir, `${ca}.pem`), '-CAkey', path.join(dir, `${ca}.key`),
    '-set_serial', String(Date.now()), '-days', '1', '-extfile', file('.ext'), '-out', file('.pem'));
  return { key: readFileSync(file('.key')), cert: readFileSync(file('.pem')) };
}
