/*
 * The trust list in the browser (registry.consortium.trust_list): fetched from GET /api/v1/trust-list while
 * online, its operator signature checked here (recoverable secp256k1 over SHA-256 of the RFC 8785 canonical
 * JSON of every key but "signature"), kept in localStorage, and used for offline codes with no network.
 *
 * Format 2 (lianzheng/trust-list/2, what nodes build now) carries a "proof" instead (registry/crypto/proofs.py):
 * SM2-SM3 or ES256K over the RFC 8785 bytes of the list without "proof", by a key that must be the operator
 * member's own per the list as of its block (an SM2 key valid at as_of.timestamp, or one of its accounts).
 * Its members list their SM2 keys with validity ("sm2_keys"), which gm offline codes are checked against.
 *
 * The operator (account, or SM2 key in hex for a gm list) is pinned on first use (like the CLI's `trust-list pull`): a later list signed by
 * anyone else is refused and the cached one stays.
 */
import { canonicalJson, checksumAddress, hex, recoverAddress, sha256, unhex, utf8 } from "./bytes.js";
import { gm } from "./gm.js";
import { verify as secpVerify } from "/static/vendor/noble-secp256k1/index.js";
import { keccak_256 } from "/static/vendor/noble-hashes/sha3.js";

const STORE = "lz-trust-list", PIN = "lz-trust-operator";
const ALG = "ES256K-R+SHA256+JCS", V1 = "lianzheng/trust-list/1", V2 = "lianzheng/trust-list/2";
const PROOF_TYPE = "LianzhengSignature2026";
// SubjectPublicKeyInfo prefixes of an uncompressed point (id-ecPublicKey with the named curve), then 04 || x || y
const SPKI = {
  "SM2-SM3": unhex("3059301306072a8648ce3d020106082a811ccf5501822d03420004"),
  "ES256K": unhex("3056301006072a8648ce3d020106052b8104000a03420004"),
};
const bad = (why) => new Error(`信任列表签名无效 / trust list signature is invalid (${why})`);

function pemKey(pem, alg) {
  const b64 = String(pem).replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "").replace(/\s+/g, "");
  let der;
  try { der = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)); } catch (e) { throw bad("key is not PEM"); }
  const prefix = SPKI[alg];
  if (der.length !== prefix.length + 64 || !prefix.every((x, i) => der[i] === x)) throw bad(`key is not an ${alg} key`);
  return der.slice(prefix.length);
}

/** r || s (64 bytes) of a strict DER ECDSA signature, or null. */
function derToCompact(der) {
  if (der.length < 8 || der[0] !== 0x30 || der[1] !== der.length - 2) return null;
  const out = new Uint8Array(64);
  let at = 2;
  for (let k = 0; k < 2; k++) {
    if (der[at] !== 0x02) return null;
    const len = der[at + 1], v = der.subarray(at + 2, at + 2 + len);
    if (len < 1 || len > 33 || v.length !== len || (len === 33 && v[0] !== 0)) return null;
    const trimmed = len === 33 ? v.subarray(1) : v;
    out.set(trimmed, k * 32 + 32 - trimmed.length);
    at += 2 + len;
  }
  return at === der.length ? out : null;
}

/** A format-2 list: the proof, then that its key is the operator's. Returns the signer (account or SM2 key hex). */
async function checkProof(obj) {
  const proof = obj.proof;
  if (!proof || proof.type !== PROOF_TYPE || typeof proof.signature !== "string" || !SPKI[proof.alg]) {
    throw new Error("信任列表格式无效 / invalid trust list format");
  }
  const body = Object.fromEntries(Object.entries(obj).filter(([k]) => k !== "proof"));
  const message = utf8.encode(canonicalJson(body));
  const key = pemKey(proof.key, proof.alg);
  let der;
  try { der = Uint8Array.from(atob(proof.signature), (c) => c.charCodeAt(0)); } catch (e) { throw bad("not base64"); }
  const opUscc = (body.operator || {}).uscc;
  const op = (body.members || []).find((m) => m && m.uscc === opUscc);
  if (!op) throw bad("the operator is not a member");
  if (proof.alg === "SM2-SM3") {
    if (!(await gm()).verifySm2(message, der, key)) throw bad("SM2");
    const at = Number((body.as_of || {}).timestamp), keyHex = hex(key);
    const entry = (op.sm2_keys || []).find((e) => String(e.key).toLowerCase() === keyHex);
    if (!entry || !(entry.since <= at && (entry.until === 0 || at <= entry.until))) throw bad("not the operator's SM2 key");
    return keyHex;
  }
  const compact = derToCompact(der);
  let ok = false;
  try { ok = !!compact && secpVerify(compact, await sha256(message), Uint8Array.of(4, ...key), { prehash: false }); } catch (e) { ok = false; }
  if (!ok) throw bad("ES256K");
  const account = checksumAddress(keccak_256(key).slice(12));
  if (!(op.accounts || []).some((a) => a.toLowerCase() === account.toLowerCase())) throw bad("not the operator's account");
  return account;
}

/** Check a trust list object; returns an indexed view or throws Error with a bilingual message. */
export async function checkTrustList(obj, pinned) {
  if (obj && obj.format === V2) {
    const signer = await checkProof(obj);
    if (pinned && pinned.toLowerCase() !== signer.toLowerCase()) {
      throw new Error(`信任列表不是由联盟运营方签发 / trust list is not from the pinned operator ${pinned}`);
    }
    return index(Object.fromEntries(Object.entries(obj).filter(([k]) => k !== "proof")), signer, await gm());
  }
  if (!obj || obj.format !== V1 || !obj.signature || obj.signature.alg !== ALG) {
    throw new Error("信任列表格式无效 / invalid trust list format");
  }
  const body = Object.fromEntries(Object.entries(obj).filter(([k]) => k !== "signature"));
  const digest = await sha256(utf8.encode(canonicalJson(body)));
  const raw = recoverAddress(digest, unhex(obj.signature.value));
  const signer = raw ? checksumAddress(raw) : null;
  const named = String((body.operator || {}).account || "");
  if (!signer || signer.toLowerCase() !== named.toLowerCase()) {
    throw new Error(`信任列表签名无效 / trust list signature is invalid (signed by ${signer || "nobody"})`);
  }
  if (pinned && pinned.toLowerCase() !== signer.toLowerCase()) {
    throw new Error(`信任列表不是由联盟运营方签发 / trust list is not from the pinned operator ${pinned}`);
  }
  return index(body, signer);
}

function index(body, signer, g) {
  const members = new Map(body.members.map((m) => [m.uscc, m]));
  const accounts = new Map();
  for (const m of body.members) for (const a of m.accounts) accounts.set(a.toLowerCase(), m);
  const sm2Keys = new Map(); // key id (hex of the first 8 bytes of SM3(x || y)) -> [{uscc, key, since, until}]
  for (const m of g ? body.members : []) {
    for (const e of m.sm2_keys || []) {
      const key = unhex(String(e.key));
      if (key.length !== 64) throw new Error("信任列表格式无效 / invalid trust list (an SM2 key is not 64 bytes)");
      const id = hex(g.sm3(key).slice(0, 8));
      sm2Keys.set(id, [...(sm2Keys.get(id) || []), { uscc: m.uscc, key, since: e.since, until: e.until }]);
    }
  }
  return {
    body, signer, members, accounts, sm2Keys,
    chainId: body.chain_id,
    ledger: String((body.contracts || {}).CertificateLedger || "").toLowerCase(),
    asOf: body.as_of, // {block, time, timestamp, block_hash}
    sm3Roots: new Map(Object.entries(body.batches).filter(([, v]) => v.length > 3)
      .map(([root, v]) => [root.replace(/^0x/, ""), String(v[3]).replace(/^0x/, "")])),
    batches: new Map(Object.entries(body.batches).map(([root, v]) => [root.replace(/^0x/, ""), v])),
    documents: new Map(Object.entries(body.documents).map(([d, v]) => [d.replace(/^0x/, ""), v])),
    typeIssuers: new Map(body.certificate_types.map((t) => [t.code, t.issuers])),
  };
}

function stored(key) {
  try { return localStorage.getItem(key); } catch (e) { return null; }
}
function store(key, value) {
  try { localStorage.setItem(key, value); } catch (e) { /* storage full or disabled: keep it in memory */ }
}

let current = null;

/** The cached trust list (checked again: localStorage is not a trusted place), or null. */
export async function cachedTrustList() {
  if (current) return current;
  const text = stored(STORE);
  if (!text) return null;
  try { current = await checkTrustList(JSON.parse(text), stored(PIN)); } catch (e) { current = null; }
  return current;
}

/** Pull a fresh list when online; on any failure keep the cached one. Returns {list, error}. */
export async function refreshTrustList() {
  let error = null;
  try {
    const r = await fetch("/api/v1/trust-list", { credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    const obj = await r.json();
    const list = await checkTrustList(obj, stored(PIN));
    const old = await cachedTrustList();
    if (!old || list.asOf.block >= old.asOf.block) {
      current = list;
      store(STORE, JSON.stringify(obj));
      if (!stored(PIN)) store(PIN, list.signer);
    }
  } catch (e) {
    error = e;
  }
  return { list: await cachedTrustList(), error };
}


