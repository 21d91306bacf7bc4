/*
 * The holder's cryptography in the browser (registry/holders/*.py is the reference; same bytes, same checks):
 *
 *   holder key   ECDSA P-256 from WebCrypto, generated with extractable: false -- the private key can sign but
 *                can never leave this browser (exportKey refuses it); the CryptoKey objects live in IndexedDB
 *                (structured clone keeps them non-extractable). Public key: DER SubjectPublicKeyInfo, base64url.
 *   key id       SHA-256 of the DER SPKI, lower-case hex (the holderKeyDigest of a bound certificate).
 *   signatures   ECDSA P-256 SHA-256, raw r || s (64 bytes: what WebCrypto produces), base64url, over the
 *                RFC 8785 canonical JSON of the object without its "signature" member (bytes.js canonicalJson).
 *   grants       registry/holders/grants.py: grantee digests, the grant, its digest, its QR text;
 *                document key wrapped for an agency grantee with ECIES (registry/holders/wrapping.py):
 *                ephemeral ECDH P-256, HKDF-SHA256 (salt = the ephemeral point, info "lianzheng/wrap/v1"),
 *                AES-256-GCM with AAD "lianzheng/wrap/v1:" + grant id; wire 0x01 || E (65) || N (12) || C.
 *   presentation registry/holders/presentation.py: {"type": "LianzhengPresentation", certificate, challenge,
 *                holder_key, signature}.
 * WebCrypto has no SM2: holder keys are P-256 in both crypto profiles.
 */
import { canonicalJson, checksumAddress, concat, hex, recoverAddress, sha256, unhex, utf8 } from "/static/verifier/bytes.js";
import { refreshTrustList } from "/static/verifier/trust.js";
import { keccak_256 } from "/static/vendor/noble-hashes/sha3.js";

const ECDSA = { name: "ECDSA", namedCurve: "P-256" };
const SIGN = { name: "ECDSA", hash: "SHA-256" };
export const GRANT_QR_PREFIX = "lianzheng:grant:";
const WRAP_INFO = "lianzheng/wrap/v1";

// ---- base64url (RFC 4648 §5, no padding) ------------------------------------------------------------------------
export function b64url(bytes) {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
export function unb64url(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) throw new Error("not base64url");
  const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}
const random = (n) => crypto.getRandomValues(new Uint8Array(n));
/** RFC 3339 UTC with seconds, "Z" (registry/holders/_time.py). */
export const rfc3339 = (seconds) => new Date(Math.floor(seconds) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");

// ---- the key store (IndexedDB) -------------------------------------------------------------------------------------
const DB = "lianzheng-wallet", VERSION = 1;
function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      for (const store of ["keys", "certificates", "grants"]) if (!db.objectStoreNames.contains(store)) db.createObjectStore(store);
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}
async function tx(store, mode, fn) {
  const db = await openDb();
  return new Promise((resolve, reject) => {
    const t = db.transaction(store, mode);
    const req = fn(t.objectStore(store));
    t.oncomplete = () => { db.close(); resolve(req ? req.result : undefined); };
    t.onerror = () => { db.close(); reject(t.error); };
  });
}
export const dbGet = (store, key) => tx(store, "readonly", (s) => s.get(key));
export const dbPut = (store, key, value) => tx(store, "readwrite", (s) => s.put(value, key));
export const dbAll = (store) => tx(store, "readonly", (s) => s.getAll());
export const dbDelete = (store, key) => tx(store, "readwrite", (s) => s.delete(key));

// ---- the holder key ------------------------------------------------------------------------------------------------
/** {privateKey, publicKey, spki, keyId, created} of this browser, or null. */
export const loadHolderKey = () => dbGet("keys", "holder");

export async function createHolderKey() {
  const pair = await crypto.subtle.generateKey(ECDSA, false, ["sign", "verify"]); // private key: not extractable
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
  const record = { privateKey: pair.privateKey, publicKey: pair.publicKey, spki: b64url(spki),
    keyId: hex(await sha256(spki)), created: rfc3339(Date.now() / 1000) };
  await dbPut("keys", "holder", record);
  return record;
}

const unsigned = (obj) => Object.fromEntries(Object.entries(obj).filter(([k]) => k !== "signature"));

/** A copy of ``obj`` with ``signature``: the holder key's signature of its RFC 8785 form without it. */
export async function signObject(key, obj) {
  const body = unsigned(obj);
  const sig = new Uint8Array(await crypto.subtle.sign(SIGN, key.privateKey, utf8.encode(canonicalJson(body))));
  return { ...body, signature: b64url(sig) };
}

/** SHA-256 of the RFC 8785 form of a signed object, hex (a grant's or a revocation's digest). */
export const objectDigest = async (obj) => hex(await sha256(utf8.encode(canonicalJson(obj))));

// ---- presentations ---------------------------------------------------------------------------------------------------
/** The challenge in a pasted text: its JSON ({"nonce", "verifier", "time"}, or an answer holding one under
 * "challenge"), or "lianzheng:challenge:" + base64url(JSON). */
export function parseChallenge(text) {
  let t = String(text || "").trim();
  const prefix = "lianzheng:challenge:";
  if (t.startsWith(prefix)) t = new TextDecoder("utf-8", { fatal: true }).decode(unb64url(t.slice(prefix.length)));
  const obj = JSON.parse(t);
  const c = obj && typeof obj.challenge === "object" && obj.challenge ? obj.challenge : obj;
  if (!c || typeof c.nonce !== "string" || typeof c.verifier !== "string" || typeof c.time !== "string") {
    throw new Error("挑战码应包含 nonce、verifier 和 time / a challenge has nonce, verifier and time");
  }
  return { nonce: c.nonce, verifier: c.verifier, time: c.time };
}

export function signPresentation(key, certificateDigest, challenge) {
  return signObject(key, { type: "LianzhengPresentation", certificate: certificateDigest, challenge,
    holder_key: key.spki });
}

// ---- grants -------------------------------------------------------------------------------------------------------------
const GB11643_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/** GB 11643 居民身份证号: 17 digits and a check character (0-9 or X). */
export function validIdNumber(text) {
  if (!/^\d{17}[\dX]$/.test(text)) return false;
  const sum = GB11643_WEIGHTS.reduce((acc, w, i) => acc + w * Number(text[i]), 0);
  return "10X98765432"[sum % 11] === text[17];
}
export const agencyGranteeDigest = async (uscc) => hex(await sha256(utf8.encode("lianzheng/grantee/agency/v1:" + uscc)));
export async function personGrantee(idNumber) {
  const salt = random(16);
  const digest = hex(await sha256(utf8.encode(`lianzheng/grantee/person/v1:${hex(salt)}:${idNumber}`)));
  return { digest, salt };
}

/**
 * The exchange key of agency ``uscc`` from its signed statement (registry/holders/exchange.py): the statement's
 * EIP-191 signature (personal_sign of SHA-256 of its RFC 8785 form without "proof") must recover to an account
 * of that agency, an active member in the consortium's signed trust list (trust.js checks the list's signature
 * and pins its operator). Throws with the reason otherwise. Returns the SPKI (base64url).
 */
export async function checkExchangeKey(statement, uscc) {
  if (!statement || statement.type !== "LianzhengExchangeKey" || statement.agency !== uscc) {
    throw new Error(`不是 ${uscc} 的交换密钥 / not ${uscc}'s exchange key statement`);
  }
  const body = Object.fromEntries(Object.entries(statement).filter(([k]) => k !== "proof"));
  if (hex(await sha256(unb64url(body.public_key))) !== body.key_id) throw new Error("交换密钥标识不符 / key_id does not match the key");
  const sig = unhex(String((statement.proof || {}).signature || ""));
  if (sig.length !== 65 || (sig[64] !== 27 && sig[64] !== 28)) throw new Error("交换密钥声明未签名 / the statement is not signed");
  const digest = await sha256(utf8.encode(canonicalJson(body)));
  const prefixed = keccak_256(concat(utf8.encode("\x19Ethereum Signed Message:\n32"), digest)); // EIP-191 v0x45
  const raw = recoverAddress(prefixed, concat(sig.subarray(0, 64), Uint8Array.of(sig[64] - 27)));
  const { list } = await refreshTrustList();
  const member = list && list.members.get(uscc);
  if (!member || member.status !== "active") throw new Error(`${uscc} 不是有效的联盟成员 / not an active consortium member`);
  const signer = raw ? checksumAddress(raw).toLowerCase() : null;
  if (!signer || !member.accounts.some((a) => a.toLowerCase() === signer)) {
    throw new Error(`交换密钥声明不是由 ${uscc} 的链上账户签署 / the statement is not signed by an account of ${uscc}`);
  }
  return body.public_key;
}

/** ``docKey`` (32 bytes) wrapped for the agency exchange key ``spkiB64`` (DER SPKI, base64url), bound to the grant. */
export async function wrapKey(docKey, spkiB64, grantId) {
  const recipient = await crypto.subtle.importKey("spki", unb64url(spkiB64), { name: "ECDH", namedCurve: "P-256" }, false, []);
  const eph = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
  const point = new Uint8Array(await crypto.subtle.exportKey("raw", eph.publicKey)); // 0x04 || X || Y, 65 bytes
  const shared = await crypto.subtle.deriveBits({ name: "ECDH", public: recipient }, eph.privateKey, 256);
  const ikm = await crypto.subtle.importKey("raw", shared, "HKDF", false, ["deriveKey"]);
  const kek = await crypto.subtle.deriveKey({ name: "HKDF", hash: "SHA-256", salt: point, info: utf8.encode(WRAP_INFO) },
    ikm, { name: "AES-GCM", length: 256 }, false, ["encrypt"]);
  const nonce = random(12);
  const sealed = new Uint8Array(await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: utf8.encode(`${WRAP_INFO}:${grantId}`) }, kek, docKey));
  return b64url(concat(new Uint8Array([1]), point, nonce, sealed));
}

/** A signed grant (registry/holders/grants.py), its digest and QR text; ``grantee`` is {kind, digest[, salt]}. */
export async function makeGrant(key, { certificate, issuer, grantee, purpose, notBefore, expires, fields, wrappedKey }) {
  const id = hex(random(16));
  const grant = await signObject(key, {
    type: "LianzhengGrant", v: 1, id, certificate, issuer, holder_key: key.spki,
    grantee: { kind: grantee.kind, digest: grantee.digest }, purpose, not_before: rfc3339(notBefore),
    expires: rfc3339(expires), fields: fields && fields.length ? fields : null,
    wrapped_key: typeof wrappedKey === "function" ? await wrappedKey(id) : null,
  });
  const body = GRANT_QR_PREFIX + b64url(utf8.encode(canonicalJson(grant)));
  return { grant, digest: await objectDigest(grant), qr: grantee.salt ? `${body}.${b64url(grantee.salt)}` : body };
}

export async function makeRevocation(key, grantDigest) {
  return signObject(key, { type: "LianzhengGrantRevocation", grant: grantDigest, time: rfc3339(Date.now() / 1000) });
}
