/*
 * The trust list in the browser (registry.consortium.trust_list): fetched from GET /api/v1/trust-list while
 * online, its operator signature checked here (recoverable secp256k1 over SHA-256 of the RFC 8785 canonical
 * JSON of every key but "signature"), kept in localStorage, and used for offline codes with no network.
 *
 * The operator account is pinned on first use (like the CLI's `trust-list pull`): a later list signed by
 * anyone else is refused and the cached one stays.
 */
import { canonicalJson, checksumAddress, hex, recoverAddress, sha256, unhex, utf8 } from "./bytes.js";

const STORE = "lz-trust-list", PIN = "lz-trust-operator";
const ALG = "ES256K-R+SHA256+JCS";

/** Check a trust list object; returns an indexed view or throws Error with a bilingual message. */
export async function checkTrustList(obj, pinned) {
  if (!obj || obj.format !== "lianzheng/trust-list/1" || !obj.signature || obj.signature.alg !== ALG) {
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

function index(body, signer) {
  const members = new Map(body.members.map((m) => [m.uscc, m]));
  const accounts = new Map();
  for (const m of body.members) for (const a of m.accounts) accounts.set(a.toLowerCase(), m);
  return {
    body, signer, members, accounts,
    chainId: body.chain_id,
    ledger: String((body.contracts || {}).CertificateLedger || "").toLowerCase(),
    asOf: body.as_of, // {block, time, timestamp, block_hash}
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


