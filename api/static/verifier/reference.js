/*
 * By reference (/v/<identifier>#<key>): the key is the URL fragment, which the browser never sends
 * (RFC 3986 §3.5). We fetch the ciphertext, decrypt it with WebCrypto AES-256-GCM (blob = 0x01 || 12-byte
 * nonce || ciphertext || 16-byte tag, additional data = the identifier in UTF-8, registry/formats/envelope.py),
 * recompute every field leaf and the document's RFC 6962 root here, and send the server only
 * {"identifier", "digest"} (POST /api/v1/verify/digest) for the chain checks.
 *   leaf entry = JSON.stringify({path, salt, value}): for strings, safe integers, booleans and null this is
 *                byte for byte the RFC 8785 canonical JSON the issuer hashed;
 *   leaf order = paths sorted by UTF-16 code units (RFC 8785 §3.2.3), which is what Array.prototype.sort does.
 * SM3 is not in WebCrypto: that digest is reported as not checked.
 *
 * What each outcome means (i18n.js VERDICTS): no key -> status_only (or the status verdict when the status
 * itself is bad); a key of the wrong length -> truncated_link; a key that does not decrypt -> wrong_key (a
 * decrypt failure is not a digest mismatch); a digest that is not the registered one -> tampered; an
 * identifier nobody registered -> unknown; a malformed identifier -> malformed.
 */
import { hex, leafHash, merkleRoot, unhex, utf8 } from "./bytes.js";
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

async function documentDigest(doc) {
  const fields = doc.fields || {}, hidden = doc.hidden || {};
  const paths = [...Object.keys(fields), ...Object.keys(hidden)].sort();
  const leaves = await Promise.all(paths.map((path) => {
    if (Object.prototype.hasOwnProperty.call(hidden, path)) return unhex(hidden[path].sha256);
    const { salt, value } = fields[path];
    return leafHash(utf8.encode(JSON.stringify({ path, salt, value })));
  }));
  return hex(await merkleRoot(leaves));
}

function decodeKey(text) { // registry.formats.envelope.decode_key: 43 base64url characters, 32 bytes
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
  let doc;
  try {
    if (blob[0] !== 1 || blob.length < 29) throw new Error("layout");
    const aes = await crypto.subtle.importKey("raw", key, { name: "AES-GCM" }, false, ["decrypt"]);
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: blob.slice(1, 13), additionalData: utf8.encode(identifier), tagLength: 128 }, aes, blob.slice(13));
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain));
  } catch (e) {
    const result = await statusOf(identifier);
    render({ ...result, verdict: "wrong_key", checks: [check("decrypt", "INVALID", "解密失败：链接中的密钥与这份证照不匹配",
      "decryption failed: the link's key does not belong to this certificate"), ...result.checks] });
    return;
  }
  progress("正在本机核验字段…", "Checking the fields on this device…");
  const digest = await documentDigest(doc);
  const problems = [];
  if (doc.format !== "lianzheng/cert/1") problems.push(["格式不符", "unknown format"]);
  if (doc.identifier !== identifier) problems.push(["证照标识与链接不符", "identifier differs from the link"]);
  const idField = (doc.fields || {})[ID_FIELD];
  if (!idField || idField.value !== identifier) problems.push(["证照标识字段与链接不符", "identifier field differs"]);
  if (!doc.digest || digest !== doc.digest.sha256) problems.push(["字段内容与摘要不符", "fields do not match the digest"]);
  const base = { identifier, fields: fieldValues(doc), disclosed_fields: Object.keys(doc.fields || {}),
    hidden_fields: Object.keys(doc.hidden || {}), type_code: doc.type_code, mode: "reference" };
  const nShown = base.disclosed_fields.length, nHidden = base.hidden_fields.length;
  const sm3 = check("sm3", "SKIPPED", "浏览器不支持 SM3（GB/T 32905），仅核验 SHA-256 摘要",
    "SM3 (GB/T 32905) is not available in the browser: only the SHA-256 digest was checked");
  if (problems.length) {
    render({ ...base, verdict: "tampered", checks: [check("integrity", "INVALID", "本机核验失败：" + problems.map((p) => p[0]).join("；"),
      "checked on this device: " + problems.map((p) => p[1]).join("; ")), sm3] });
    return;
  }
  progress("正在核验链上记录…", "Checking the chain…");
  let result;
  try {
    result = await postJson("/verify/digest", { identifier, digest }); // nothing else leaves this device
  } catch (e) {
    result = { verdict: "cannot_verify", checks: [check("anchoring", "SKIPPED", "无法连接核验服务：" + e.message, "verification service unreachable: " + e.message)] };
  }
  if (unregistered(result)) result.verdict = "unknown";
  const integrity = check("integrity", "VALID", `本机已核验 ${nShown} 个字段、${nHidden} 个隐藏字段，SHA-256 摘要一致`,
    `checked on this device: ${nShown} fields, ${nHidden} hidden; the SHA-256 digest matches`, { sha256: digest });
  const server = result.checks.find((c) => c.name === "integrity");
  // The server's sm3 check follows the *registered* SM3 digest to the SM3 root on chain; this page has not
  // computed the SM3 digest of what it decrypted, so its own SKIPPED stands, unless the server found the
  // registered SM3 digest, path or root altered (INVALID, verdict tampered).
  const serverSm3 = result.checks.find((c) => c.name === "sm3");
  const others = result.checks.filter((c) => c.name !== "integrity" && c.name !== "sm3");
  const sm3Shown = serverSm3 && serverSm3.status === "INVALID" ? serverSm3 : sm3;
  // The server's integrity check is INVALID only when the digest is not the one registered: keep that one.
  render({ ...result, ...base, checks: server && server.status === "INVALID" ? [server, sm3Shown, ...others] : [integrity, sm3Shown, ...others] });
}


