/*
 * 国密 in the verifier page: SM3 (GB/T 32905) digests and RFC 6962 trees, HMAC-SM3 (RFC 2104), and the
 * version-2 by-reference envelope (SM4-CTR then HMAC-SM3, encrypt-then-MAC). WebCrypto has neither SM3 nor
 * SM4; both come from the vendored sm-crypto 0.5.8 (api/static/vendor/README.md), loaded on first use as
 * classic scripts (its UMD build sets ``self.sm3`` and ``self.sm4``; the page's CSP allows scripts of this
 * origin and no eval).
 *
 * Version 2 blob, as registry/formats/envelope.py writes it (the one reference: any change there is a change
 * here):
 *   key            = the 32-byte URL key (the same as version 1)
 *   k_enc || k_mac = HMAC-SM3(key, "lianzheng/envelope/2")          16 + 16 bytes
 *   blob           = 0x02 || iv (16) || ciphertext || tag (32)
 *   tag            = HMAC-SM3(k_mac, 0x02 || iv || len(aad) as 8 bytes big-endian || aad || ciphertext)
 *   ciphertext     = SM4-CTR(k_enc, iv, plaintext): keystream block i = SM4(k_enc, iv + i mod 2^128), the
 *                    counter a 128-bit big-endian integer (OpenSSL's CTR, `openssl enc -sm4-ctr`)
 * sm-crypto has SM4 in ECB and CBC only, so CTR is built here from one ECB encryption (no padding) of all the
 * counter blocks. The tag is checked before anything is decrypted; a wrong key and a changed byte fail it alike.
 *
 * SM2 signatures (GB/T 32918.2 with SM3 and the default distinguishing id 1234567812345678, DER) are checked
 * with sm-crypto's sm2.doVerifySignature ({der: true, hash: true}: it computes Z and e = SM3(Z || message)
 * itself); Python's tongsuopy signatures verify here (tests/e2e/test_verifier_page_gm_offline.py).
 *
 * >>> const g = await gm();   // hex() and utf8 from bytes.js
 * >>> hex(g.sm3(utf8.encode("abc")))
 * '66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0'
 */

const VENDOR = "/static/vendor/sm-crypto/";
const LABEL = new TextEncoder().encode("lianzheng/envelope/2");
const VERSION = 2, IV_LEN = 16, TAG_LEN = 32, BLOCK = 16;
export const SM4_MIN_LEN = 1 + IV_LEN + TAG_LEN;

const fromHex = (text) => Uint8Array.from(text.match(/../g) || [], (p) => parseInt(p, 16));

function cat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function loadScript(name) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = VENDOR + name;
    script.onload = () => resolve();
    script.onerror = () => { script.remove(); reject(new Error(`无法加载国密算法库 ${name} / cannot load the SM library ${name}`)); };
    document.head.append(script);
  });
}

/** The SM primitives over a loaded sm-crypto (``{sm2, sm3, sm4}`` as its UMD builds export them). */
export function bind(lib) {
  // sm-crypto takes byte arrays (or hex / UTF-8 strings, which we never pass) and answers in hex.
  const sm3 = (bytes) => fromHex(lib.sm3(bytes));
  const hmacSm3 = (key, message) => fromHex(lib.sm3(message, { mode: "hmac", key: Array.from(key) }));
  const leafHash = (entry) => sm3(cat(Uint8Array.of(0), entry)); // RFC 6962 §2.1 with SM3 (registry.crypto.merkle)
  const nodeHash = (left, right) => sm3(cat(Uint8Array.of(1), left, right));

  /** The SM3 RFC 6962 root over leaf hashes, level by level as bytes.js merkleRoot does for SHA-256. */
  function merkleRoot(leaves) {
    if (leaves.length === 0) return sm3(new Uint8Array(0));
    let level = leaves;
    while (level.length > 1) {
      const next = [];
      for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i], level[i + 1]));
      if (level.length % 2) next.push(level[level.length - 1]);
      level = next;
    }
    return level[0];
  }

  /** SM4-CTR keystream XOR ``data`` (encrypts and decrypts alike). */
  function sm4Ctr(key, iv, data) {
    const blocks = Math.ceil(data.length / BLOCK);
    const counters = new Uint8Array(blocks * BLOCK);
    const counter = Uint8Array.from(iv);
    for (let b = 0; b < blocks; b++) {
      counters.set(counter, b * BLOCK);
      for (let i = BLOCK - 1; i >= 0; i--) { counter[i] = (counter[i] + 1) & 0xff; if (counter[i] !== 0) break; }
    }
    const stream = blocks ? lib.sm4.encrypt(counters, Array.from(key), { padding: "none", output: "array" }) : [];
    return Uint8Array.from(data, (x, i) => x ^ stream[i]);
  }

  /** ``[k_enc, k_mac]`` of a version-2 blob (registry.formats.envelope.sm4_subkeys). */
  function subkeys(key) {
    const derived = hmacSm3(key, LABEL);
    return [derived.slice(0, 16), derived.slice(16)];
  }

  /** What the tag authenticates (registry.formats.envelope.sm4_mac_input). */
  function macInput(body, aad) {
    const length = new Uint8Array(8);
    new DataView(length.buffer).setBigUint64(0, BigInt(aad.length));
    return cat(body.subarray(0, 1 + IV_LEN), length, aad, body.subarray(1 + IV_LEN));
  }

  /** The plaintext of a version-2 blob, or null when its tag does not check (wrong key, wrong identifier or
   * a changed byte: nothing is decrypted then) or it is not a version-2 blob. */
  function openSm4(blob, key, aad) {
    if (blob.length < SM4_MIN_LEN || blob[0] !== VERSION || key.length !== 32) return null;
    const [kEnc, kMac] = subkeys(key);
    const body = blob.subarray(0, blob.length - TAG_LEN), tag = blob.subarray(blob.length - TAG_LEN);
    const expected = hmacSm3(kMac, macInput(body, aad));
    if (!expected.every((x, i) => x === tag[i])) return null;
    return sm4Ctr(kEnc, body.subarray(1, 1 + IV_LEN), body.subarray(1 + IV_LEN));
  }

  /** A version-2 blob of ``plaintext`` (for tests of this page against the Python opener). */
  function sealSm4(plaintext, key, aad, iv) {
    const [kEnc, kMac] = subkeys(key);
    const body = cat(Uint8Array.of(VERSION), iv, sm4Ctr(kEnc, iv, plaintext));
    return cat(body, hmacSm3(kMac, macInput(body, aad)));
  }

  /** True when ``der`` is a valid SM2-SM3 signature of ``message`` under the 64-byte key x || y. */
  function verifySm2(message, der, key) {
    if (!lib.sm2 || key.length !== 64 || der.length < 8 || der.length > 72) return false;
    const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    try {
      return lib.sm2.doVerifySignature(Array.from(message), toHex(der), "04" + toHex(key), { der: true, hash: true });
    } catch (e) {
      return false; // a malformed signature or a point off the curve
    }
  }

  return { sm3, hmacSm3, leafHash, nodeHash, merkleRoot, sm4Ctr, openSm4, sealSm4, verifySm2 };
}

let loading = null;
/** The SM primitives, loading sm-crypto on the first call (a failed load is retried on the next call). */
export function gm() {
  if (!loading) {
    loading = (async () => {
      if (!self.sm3) await loadScript("sm3.js");
      if (!self.sm4) await loadScript("sm4.js");
      if (!self.sm2) await loadScript("sm2.js");
      return bind({ sm2: self.sm2, sm3: self.sm3, sm4: self.sm4 });
    })();
    loading.catch(() => { loading = null; });
  }
  return loading;
}
