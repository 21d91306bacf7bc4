/*
 * By reference (/v/<identifier>#<key>): the key is the URL fragment, which the browser never sends
 * (RFC 3986 §3.5). We fetch the ciphertext and decrypt it here (registry/formats/envelope.py; the first byte
 * names the construction):
 *   version 1: AES-256-GCM with WebCrypto (blob = 0x01 || 12-byte nonce || ciphertext || 16-byte tag,
 *              additional data = the identifier in UTF-8);
 *   version 2: SM4-CTR then HMAC-SM3 (the gm profile), with the vendored sm-crypto (gm.js): the tag is
 *              checked before anything is decrypted.
 * Then every field leaf and the document's two RFC 6962 roots are recomputed here, SHA-256 (WebCrypto) and
 * SM3 (gm.js), and the server gets only {"identifier", "digest", "sm3"} (POST /api/v1/verify/digest): it checks
 * both digests are the registered ones and that each leads to its batch root on chain.
 *   leaf entry = JSON.stringify({path, salt, value}): for strings, safe integers, booleans and null this is
 *                byte for byte the RFC 8785 canonical JSON the issuer hashed; the same entry gives the
 *                SHA-256 leaf and the SM3 leaf; a hidden field carries both leaf hashes;
 *   leaf order = paths sorted by UTF-16 code units (RFC 8785 §3.2.3), which is what Array.prototype.sort does.
 *
 * What each outcome means (i18n.js VERDICTS): no key -> status_only (or the status verdict when the status
 * itself is bad); a key of the wrong length -> truncated_link; a key that does not decrypt -> wrong_key (a
 * decrypt failure is not a digest mismatch: neither AES-GCM's tag nor the HMAC-SM3 tag can tell a wrong key
 * from a changed ciphertext byte, and both are refused before any content is shown); a digest (SHA-256 or
 * SM3) that is not the registered one -> tampered; an identifier nobody registered -> unknown; a malformed
 * identifier -> malformed. The SM3 check is VALID when the SM3 digest computed here is the registered one and
 * leads to the SM3 root on chain, INVALID when either fails, SKIPPED when the record has no SM3 path (anchored
 * before SM3 roots went on chain) or the chain was not consulted.
 */
import { hex, leafHash, merkleRoot, unhex, utf8 } from "./bytes.js";
import { gm } from "./gm.js";
import { progress, render, show } from "./render.js";

const API = "/api/v1";
const FETCH = { credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" };
const ID_FIELD = "证照标识";
const STATUS_VERDICTS = new Set(["revoked", "suspended", "superseded", "expired", "not_yet_valid", "tampered", "unknown_issuer"]);

class HttpError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function postJson(path, body) {
  const r = await fetch(API + path, { ...FETCH, method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const data = await r.json().catch(() => null);
  if (!r.ok) {
    const err = (data && data.error) || {};
    throw new HttpError(r.status, err.code, err.message || "HTTP " + r.status);
  }
  return data;
}

const check = (name, status, zh, en, details) => ({ name, status, reason_zh: zh, reason_en: en, details: details || {} });
const fieldValues = (doc) => Object.fromEntries(Object.entries(doc.fields || {}).map(([k, f]) => [k, f.value]));

/** An identifier nobody registered: the server's not_anchored with ``registered: false`` on anchoring. */
const unregistered = (result) => result.verdict === "not_anchored" &&
  (result.checks || []).some((c) => c.name === "anchoring" && c.details && c.details.registered === false);

/** The server's status-by-identifier, or the page verdict for an identifier it cannot use. */
async function statusOf(identifier) {
  try {
    const result = await postJson("/verify", { identifier });
    if (unregistered(result)) result.verdict = "unknown";
    return result;
  } catch (e) {
    if (e.status === 422) return { verdict: "malformed", identifier, checks: [check("integrity", "INVALID", e.message, e.message)] };
    throw e;
  }
}

/** {sha256, sm3}: hex of the document's two RFC 6962 roots over its field leaves (registry.certificates.documents
 * Document.compute_digests). */
export async function documentDigests(doc, sm) {
  const fields = doc.fields || {}, hidden = doc.hidden || {};
  const paths = [...Object.keys(fields), ...Object.keys(hidden)].sort();
  const hiddenHash = (path, alg) => unhex(typeof (hidden[path] || {})[alg] === "string" ? hidden[path][alg] : "");
  const sha = [], sm3 = [];
  for (const path of paths) {
    if (Object.prototype.hasOwnProperty.call(hidden, path)) {
      sha.push(hiddenHash(path, "sha256"));
      sm3.push(hiddenHash(path, "sm3"));
      continue;
    }
    const { salt, value } = fields[path];
    const entry = utf8.encode(JSON.stringify({ path, salt, value }));
    sha.push(leafHash(entry));
    sm3.push(sm.leafHash(entry));
  }
  return { sha256: hex(await merkleRoot(await Promise.all(sha))), sm3: hex(sm.merkleRoot(sm3)) };
}

/** The plaintext of ``blob`` (version 1 or 2), or null when it does not open with ``key`` for ``identifier``;
 * ``sm`` is gm.js's primitives. */
export async function openEnvelope(blob, key, identifier, sm) {
  const aad = utf8.encode(identifier);
  if (blob[0] === 1 && blob.length >= 29) {
    try {
      const aes = await crypto.subtle.importKey("raw", key, { name: "AES-GCM" }, false, ["decrypt"]);
      return new Uint8Array(await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: blob.slice(1, 13), additionalData: aad, tagLength: 128 }, aes, blob.slice(13)));
    } catch (e) {
      return null;
    }
  }
  if (blob[0] === 2) return sm.openSm4(blob, key, aad);
  return null;
}

export function decodeKey(text) { // registry.formats.envelope.decode_key: 43 base64url characters, 32 bytes
  if (!/^[A-Za-z0-9_-]{43}$/.test(text)) return null;
  const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=");
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

export async function verifyReference(identifier, keyText) {
  show("result");
  show("notice");
  if (!keyText) {
    progress("正在查询状态…", "Checking status…");
    const result = await statusOf(identifier);
    if (result.verdict === "valid") result.verdict = "status_only";
    else if (STATUS_VERDICTS.has(result.verdict)) {
      result.summary = null; // the verdict's own words; the content was not checked either (see the checks)
    }
    result.mode = "status";
    render(result);
    return;
  }
  const key = decodeKey(keyText);
  if (!key) {
    const cut = /^[A-Za-z0-9_-]{0,42}$/.test(keyText);
    const result = await statusOf(identifier);
    if (result.verdict === "unknown" || result.verdict === "malformed") { render(result); return; }
    render({ ...result, verdict: cut ? "truncated_link" : "wrong_key", checks: [check("decrypt", "INVALID",
      `链接中的密钥有 ${keyText.length} 个字符，应为 43 个`, `the link's key has ${keyText.length} characters, 43 expected`), ...result.checks] });
    return;
  }
  progress("正在获取并解密证照…", "Fetching and decrypting…");
  const r = await fetch(`${API}/certificates/${encodeURIComponent(identifier)}/blob`, FETCH);
  if (r.status === 404 || r.status === 422) { render(await statusOf(identifier)); return; }
  if (!r.ok) throw new HttpError(r.status, null, "HTTP " + r.status);
  const blob = new Uint8Array(await r.arrayBuffer());
  const sm = await gm(); // SM3 for every document, SM4 for version 2; a library that cannot load: cannot_verify
  const plain = await openEnvelope(blob, key, identifier, sm);
  let doc = null;
  try {
    if (plain) doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain));
  } catch (e) {
    doc = null;
  }
  if (!doc || typeof doc !== "object") {
    const result = await statusOf(identifier);
    render({ ...result, verdict: "wrong_key", checks: [check("decrypt", "INVALID",
      "解密失败：链接中的密钥与这份证照不匹配，或密文已被改动，未显示任何内容",
      "decryption failed: the link's key does not belong to this certificate, or the ciphertext was changed; nothing is shown",
      { envelope: blob[0] === 2 ? "SM4-CTR + HMAC-SM3" : blob[0] === 1 ? "AES-256-GCM" : "unknown" }), ...result.checks] });
    return;
  }
  progress("正在本机核验字段…", "Checking the fields on this device…");
  const { sha256: digest, sm3 } = await documentDigests(doc, sm);
  const stated = doc.digest || {};
  const problems = [];
  if (doc.format !== "lianzheng/cert/1") problems.push(["格式不符", "unknown format"]);
  if (doc.identifier !== identifier) problems.push(["证照标识与链接不符", "identifier differs from the link"]);
  const idField = (doc.fields || {})[ID_FIELD];
  if (!idField || idField.value !== identifier) problems.push(["证照标识字段与链接不符", "identifier field differs"]);
  if (digest !== stated.sha256) problems.push(["字段内容与 SHA-256 摘要不符", "fields do not match the SHA-256 digest"]);
  if (sm3 !== stated.sm3) problems.push(["字段内容与 SM3 摘要不符", "fields do not match the SM3 digest"]);
  const base = { identifier, fields: fieldValues(doc), disclosed_fields: Object.keys(doc.fields || {}),
    hidden_fields: Object.keys(doc.hidden || {}), type_code: doc.type_code, mode: "reference" };
  const nShown = base.disclosed_fields.length, nHidden = base.hidden_fields.length;
  if (problems.length) {
    const sm3Local = sm3 === stated.sm3
      ? check("sm3", "SKIPPED", "本机计算的 SM3 摘要与字段一致；内容未通过核验，未查询链上 SM3 批次根",
        "the SM3 digest computed on this device matches the fields; the content failed, so the chain was not asked", { sm3 })
      : check("sm3", "INVALID", "本机计算的 SM3 摘要与证照中的 SM3 摘要不符（GB/T 32905）",
        "the SM3 digest computed on this device differs from the certificate's SM3 digest (GB/T 32905)", { sm3, stated: stated.sm3 });
    render({ ...base, verdict: "tampered", checks: [check("integrity", "INVALID", "本机核验失败：" + problems.map((p) => p[0]).join("；"),
      "checked on this device: " + problems.map((p) => p[1]).join("; ")), sm3Local] });
    return;
  }
  progress("正在核验链上记录…", "Checking the chain…");
  let result;
  try {
    result = await postJson("/verify/digest", { identifier, digest, sm3 }); // nothing else leaves this device
  } catch (e) {
    result = { verdict: "cannot_verify", checks: [check("anchoring", "SKIPPED", "无法连接核验服务：" + e.message, "verification service unreachable: " + e.message)] };
  }
  if (unregistered(result)) result.verdict = "unknown";
  const integrity = check("integrity", "VALID", `本机已核验 ${nShown} 个字段、${nHidden} 个隐藏字段，SHA-256 与 SM3 摘要一致`,
    `checked on this device: ${nShown} fields, ${nHidden} hidden; the SHA-256 and SM3 digests match`, { sha256: digest, sm3 });
  const server = result.checks.find((c) => c.name === "integrity");
  const others = result.checks.filter((c) => c.name !== "integrity" && c.name !== "sm3");
  const sm3Shown = sm3Check(result.checks.find((c) => c.name === "sm3"), server, sm3);
  // The server's integrity check is INVALID only when a digest is not the one registered: keep that one.
  render({ ...result, ...base, checks: server && server.status === "INVALID" ? [server, sm3Shown, ...others] : [integrity, sm3Shown, ...others] });
}

/** The SM3 row: the server followed the SM3 digest computed here (it must be the registered one) through its
 * audit path to the SM3 root on chain. */
function sm3Check(serverSm3, serverIntegrity, sm3) {
  if (serverSm3 && serverSm3.status === "VALID") {
    return check("sm3", "VALID", "本机计算的 SM3 摘要与登记一致，经默克尔证明得出链上的 SM3 批次根（GB/T 32905）",
      "the SM3 digest computed on this device is the registered one and its audit path leads to the SM3 batch root on chain (GB/T 32905)",
      { ...serverSm3.details, sm3 });
  }
  if (serverSm3) return { ...serverSm3, details: { ...(serverSm3.details || {}), sm3 } }; // SKIPPED (no SM3 path) or INVALID
  if (serverIntegrity && serverIntegrity.status === "INVALID" && (serverIntegrity.details || {}).differs === "sm3") {
    return check("sm3", "INVALID", "本机计算的 SM3 摘要与该证照登记的 SM3 摘要不符",
      "the SM3 digest computed on this device differs from the one registered for this certificate", { sm3 });
  }
  return check("sm3", "SKIPPED", "本机已计算 SM3 摘要，但未能与链上 SM3 批次根核对",
    "the SM3 digest was computed on this device but not checked against the SM3 batch root on chain", { sm3 });
}
