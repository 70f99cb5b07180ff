// Finexus's side of a KPOS link, written independently of the Go code
// from the docs (Embed Code + Appendix 1) with the npm `jose` package and
// node:crypto. Driven by protocol/kpos/interop_test.go:
//
//   node interop.mjs finexus DIR N
//     derives the content key from DIR/finexus-ecdh.pem and
//     DIR/kiosk-ecdh.pub.pem, then prints {"cek":hex} and N lines of
//     {"body","signature"}: DIR/notification.json encrypted (alg dir,
//     enc A256CBC-HS512, epk + kid headers), "0025" prepended, signed with
//     DIR/finexus-sign.pem (ECDSA P-521, SHA-512, DER, base64,
//     encodeURIComponent).
//
//   node interop.mjs kiosk DIR  < lines of {"body","signature"}
//     verifies each with DIR/kiosk-sign.pub.pem, decrypts it and prints
//     {"ok","mti","plaintext","header"} or {"ok":false,"error"}.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

// jose calls the global WebCrypto object, which Node 18 (Debian's nodejs)
// does not expose by default; hence the dynamic import after this.
globalThis.crypto ??= crypto.webcrypto;
const { CompactEncrypt, compactDecrypt, decodeProtectedHeader } = await import('jose');

const [mode, dir, count] = process.argv.slice(2);
if (!dir || (mode !== 'finexus' && mode !== 'kiosk')) {
  console.error('usage: node interop.mjs finexus DIR N | kiosk DIR');
  process.exit(2);
}
const read = (name) => fs.readFileSync(path.join(dir, name));

// Concat KDF (NIST SP 800-56A) with SHA-256 and the raw other info "1.0",
// the reading of getSecretKey(Z, 512, "1.0".getBytes()).
function concatKDF(z, otherInfo, bytes) {
  const blocks = [];
  for (let i = 1; blocks.length * 32 < bytes; i++) {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(i);
    blocks.push(crypto.createHash('sha256').update(counter).update(z).update(otherInfo).digest());
  }
  return Buffer.concat(blocks).subarray(0, bytes);
}

function contentKey() {
  const z = crypto.diffieHellman({
    privateKey: crypto.createPrivateKey(read('finexus-ecdh.pem')),
    publicKey: crypto.createPublicKey(read('kiosk-ecdh.pub.pem')),
  });
  if (z.length !== 32) throw new Error(`ECDH gave ${z.length} bytes`);
  return concatKDF(z, Buffer.from('1.0'), 64);
}

async function finexus(n) {
  const cek = contentKey();
  const signKey = crypto.createPrivateKey(read('finexus-sign.pem'));
  if (signKey.asymmetricKeyDetails.namedCurve !== 'secp521r1') throw new Error('signing key is not P-521');
  const pub = crypto.createPublicKey(read('finexus-ecdh.pem')).export({ format: 'jwk' });
  const kid = read('finexus-epk-kid.txt').toString().trim();
  // Member order of the docs' samples.
  const header = {
    epk: { kty: pub.kty, crv: pub.crv, kid, x: pub.x, y: pub.y },
    kid: '123',
    enc: 'A256CBC-HS512',
    alg: 'dir',
  };
  const plaintext = read('notification.json');
  const out = [JSON.stringify({ cek: cek.toString('hex') })];
  for (let i = 0; i < n; i++) {
    const jwe = await new CompactEncrypt(plaintext).setProtectedHeader(header).encrypt(cek);
    const body = '0025' + jwe;
    const sig = crypto.sign('sha512', Buffer.from(body, 'utf8'), { key: signKey, dsaEncoding: 'der' });
    out.push(JSON.stringify({ body, signature: encodeURIComponent(sig.toString('base64')) }));
  }
  process.stdout.write(out.join('\n') + '\n');
}

async function kiosk() {
  const cek = contentKey();
  const verifyKey = crypto.createPublicKey(read('kiosk-sign.pub.pem'));
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line) continue;
    const { body, signature } = JSON.parse(line);
    let result;
    try {
      const sig = Buffer.from(decodeURIComponent(signature), 'base64');
      const ok = crypto.verify('sha512', Buffer.from(body, 'utf8'), { key: verifyKey, dsaEncoding: 'der' }, sig);
      if (!ok) throw new Error('signature does not verify');
      const mti = body.slice(0, 4);
      if (!/^[0-9]{3}[0-9X]$/.test(mti)) throw new Error(`bad MTI ${JSON.stringify(mti)}`);
      const jwe = body.slice(4);
      const { plaintext } = await compactDecrypt(jwe, cek, {
        keyManagementAlgorithms: ['dir'],
        contentEncryptionAlgorithms: ['A256CBC-HS512'],
      });
      result = { ok: true, mti, plaintext: new TextDecoder().decode(plaintext), header: decodeProtectedHeader(jwe) };
    } catch (e) {
      result = { ok: false, error: String(e && e.message ? e.message : e) };
    }
    process.stdout.write(JSON.stringify(result) + '\n');
  }
}

if (mode === 'finexus') {
  await finexus(Number.parseInt(count ?? '1', 10));
} else {
  await kiosk();
}
