/**
 * Test certificates made with openssl in a temporary directory: a CA, a server certificate for
 * 127.0.0.1 / localhost, a client certificate signed by the CA, and one signed by a CA nobody trusts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pki {
  dir: string;
  ca: Buffer;
  caPath: string;
  serverCert: string;
  serverKey: string;
  client: { cert: Buffer; key: Buffer; certPath: string; keyPath: string };
  /** Signed by a CA the servers do not trust. */
  stranger: { cert: Buffer; key: Buffer; certPath: string; keyPath: string };
  remove(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'rmqtt-pki-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = (name: string, cn: string): void =>
    openssl(dir, ['req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${cn}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const leaf = (name: string, cn: string, caName: string, ext: string): void => {
    openssl(dir, ['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.crt`, '-CAkey', `${caName}.key`, '-set_serial', String(Date.now() % 1e9),
      '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`]);
  };
  ca('ca', 'rmqtt-test-ca');
  ca('other-ca', 'some-other-ca');
  leaf('server', 'localhost', 'ca', 'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'device-42', 'ca', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
  leaf('stranger', 'intruder', 'other-ca', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
  const path = (f: string): string => join(dir, f);
  const pair = (name: string) => ({ cert: readFileSync(path(`${name}.crt`)), key: readFileSync(path(`${name}.key`)), certPath: path(`${name}.crt`), keyPath: path(`${name}.key`) });
  return {
    dir,
    ca: readFileSync(path('ca.crt')),
    caPath: path('ca.crt'),
    serverCert: path('server.crt'),
    serverKey: path('server.key'),
    client: pair('client'),
    stranger: pair('stranger'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
