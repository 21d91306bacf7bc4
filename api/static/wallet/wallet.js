/*
 * The browser wallet (电子卡包) page: wiring and rendering. holder.js does the cryptography and keeps the key,
 * the certificates (their links' keys and decrypted documents) and the grants in IndexedDB; nothing secret is
 * ever sent: the server gets a presentation's signature, a grant (digests, the signature, and the document key
 * wrapped for the grantee agency only) and a revocation statement.
 *
 * Adding a certificate: its by-reference link (<base>/v/<identifier>#<key>) is opened here as the verifier page
 * does (reference.js: fetch the ciphertext, decrypt, recompute the SHA-256 and SM3 roots); a document whose
 * fields do not match its digests is refused.
 */
import { gm } from "/static/verifier/gm.js";
import { beijingTime } from "/static/verifier/i18n.js";
import { decodePhoto } from "/static/verifier/photo.js";
import { decodeKey, documentDigests, openEnvelope } from "/static/verifier/reference.js";
import { $, bi, h, show } from "/static/verifier/render.js";
import {
  agencyGranteeDigest, checkExchangeKey, createHolderKey, dbAll, dbGet, dbPut, loadHolderKey, makeGrant, makeRevocation,
  parseChallenge, personGrantee, signPresentation, validIdNumber, wrapKey,
} from "./holder.js";

const API = "/api/v1";
const FETCH = { credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" };
const USCC = /^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$/;

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}
async function api(method, path, body) {
  const r = await fetch(API + path, { ...FETCH, method, headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined });
  const data = await r.json().catch(() => null);
  if (!r.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(r.status, err.code, err.message || "HTTP " + r.status);
  }
  return data;
}

function say(kind, zh, en, detail) {
  const node = show("notice", h("p", { class: "notice-title" }, bi(zh, en)), detail ? h("p", { class: "notice-detail" }, detail) : null);
  node.className = "notice notice-" + kind;
  node.dataset.kind = kind;
}
const fail = (zh, en, e) => say("bad", zh, en, e ? (e.code ? `[${e.code}] ` : "") + e.message : null);

function setLang(lang) {
  document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
  $("lang-toggle").setAttribute("aria-pressed", String(lang === "en"));
  try { localStorage.setItem("lz-lang", lang); } catch (e) { /* storage may be disabled */ }
}

// ---- the key ---------------------------------------------------------------------------------------------------------
let KEY = null;
function showKey() {
  $("key-none").hidden = !!KEY;
  $("key-info").hidden = !KEY;
  if (!KEY) return;
  $("key-id").textContent = KEY.keyId;
  $("key-spki").textContent = KEY.spki;
  $("key-extractable").dataset.extractable = String(KEY.privateKey.extractable);
}
function needKey() {
  if (KEY) return true;
  fail("请先生成持证人密钥", "Create a holder key first");
  return false;
}

// ---- certificates ----------------------------------------------------------------------------------------------------
let SELECTED = null;
const certName = (doc) => ((doc.fields || {})["证照名称"] || {}).value || doc.identifier;
const shown = (doc, name) => ((doc.fields || {})[name] || {}).value;

async function renderCerts() {
  const certs = await dbAll("certificates");
  if (!SELECTED && certs.length) SELECTED = certs[0].identifier;
  $("cert-list").replaceChildren(...certs.map((c) => {
    const bound = KEY && shown(c.document, "holderKeyDigest") === KEY.keyId;
    const radio = h("input", { type: "radio", name: "cert", value: c.identifier, checked: c.identifier === SELECTED,
      "aria-label": c.identifier });
    radio.addEventListener("change", () => { SELECTED = c.identifier; });
    return h("li", { class: "item" + (bound ? " bound" : ""), "data-identifier": c.identifier, "data-bound": String(!!bound) },
      radio, h("strong", {}, certName(c.document)),
      h("span", {}, bound ? bi("已绑定本人密钥", "bound to my key") : bi("未绑定", "not bound")),
      h("span", { class: "sub" }, `${shown(c.document, "持证主体") || ""} · ${c.identifier}`));
  }));
}

/** {identifier, key (base64url), document} of a by-reference link, checked like the verifier page does. */
async function openLink(text) {
  let url;
  try { url = new URL(text.trim()); } catch (e) { throw new Error("不是核验链接 / not a verification link"); }
  const m = url.pathname.match(/\/v\/([^/]+)$/);
  const keyText = url.hash.slice(1);
  const key = decodeKey(keyText);
  if (!m || !key) throw new Error("链接应为 …/v/<证照标识>#<密钥> / the link must be …/v/<identifier>#<key>");
  const identifier = decodeURIComponent(m[1]);
  const r = await fetch(`${API}/certificates/${encodeURIComponent(identifier)}/blob`, FETCH);
  if (!r.ok) throw new ApiError(r.status, "blob", `证照不存在或不可取 / cannot fetch the certificate (HTTP ${r.status})`);
  const sm = await gm();
  const plain = await openEnvelope(new Uint8Array(await r.arrayBuffer()), key, identifier, sm);
  if (!plain) throw new Error("密钥无法解密这份证照 / the key does not open this certificate");
  const doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain));
  const digests = await documentDigests(doc, sm);
  if (doc.identifier !== identifier || digests.sha256 !== (doc.digest || {}).sha256 || digests.sm3 !== (doc.digest || {}).sm3) {
    throw new Error("证照内容与摘要不符，拒绝保存 / the contents do not match the digest: not saved");
  }
  return { identifier, key: keyText, document: doc };
}

async function selected() {
  const cert = SELECTED && await dbGet("certificates", SELECTED);
  if (!cert) fail("请先添加并选择一份证照", "Add and select a certificate first");
  return cert;
}

// ---- presenting ---------------------------------------------------------------------------------------------------------
async function present() {
  if (!needKey()) return;
  const cert = await selected();
  if (!cert) return;
  let challenge;
  try { challenge = parseChallenge($("challenge").value); } catch (e) { fail("挑战码无法识别", "Unreadable challenge", e); return; }
  const presentation = await signPresentation(KEY, cert.document.digest.sha256, challenge);
  // what POST /api/v1/presentations takes: the certificate and the signature over the verifier's challenge
  $("presentation").value = JSON.stringify({ document: cert.document, presentation });
  $("presentation-out").hidden = false;
  say("ok", "已签名，请把出示凭证交给用证方", "Signed: give the presentation to the verifier");
}

// ---- grants --------------------------------------------------------------------------------------------------------------
/** The grantee agency's exchange key (DER SPKI, base64url): its statement from the node, whose signature must
 * recover to one of the agency's accounts in the signed trust list (holder.js checkExchangeKey). */
async function exchangeKey(uscc) {
  return checkExchangeKey(await api("GET", `/agencies/${encodeURIComponent(uscc)}/exchange-key`), uscc);
}

async function grant() {
  if (!needKey()) return;
  const cert = await selected();
  if (!cert) return;
  const kind = $("grantee-kind").value, who = $("grantee-id").value.trim().toUpperCase();
  const purpose = $("purpose").value.trim(), days = Number($("days").value);
  const fields = $("fields").value.split(/[,，、]/).map((s) => s.trim()).filter(Boolean);
  if (kind === "agency" && !USCC.test(who)) { fail("统一社会信用代码格式不正确", "Not a USCC"); return; }
  if (kind === "person" && !validIdNumber(who)) { fail("居民身份证号不正确（GB 11643 校验位）", "Not a valid ID number (GB 11643 check digit)"); return; }
  if (!purpose || purpose.length > 200) { fail("请填写用途（不超过 200 字）", "State the purpose (at most 200 characters)"); return; }
  if (!(days >= 1 && days <= 366)) { fail("有效天数应为 1 到 366", "Valid for 1 to 366 days"); return; }
  const now = Math.floor(Date.now() / 1000);
  let grantee, wrappedKey = null;
  try {
    if (kind === "agency") {
      grantee = { kind, digest: await agencyGranteeDigest(who) };
      const spki = await exchangeKey(who);
      const docKey = decodeKey(cert.key);
      wrappedKey = (grantId) => wrapKey(docKey, spki, grantId);
    } else {
      grantee = { kind, ...(await personGrantee(who)) };
    }
    const made = await makeGrant(KEY, { certificate: cert.document.digest.sha256, issuer: shown(cert.document, "颁发机构代码"),
      grantee, purpose, notBefore: now - 60, expires: now + days * 86400, fields, wrappedKey });
    await api("POST", "/grants", { grant: made.grant });
    await dbPut("grants", made.digest, { ...made, certificateName: certName(cert.document), grantee: who, kind,
      status: "pending", created: now });
    await showGrant(made, who);
    await renderGrants();
    say("ok", "授权已签署并提交上链", "Grant signed and sent to be anchored", made.digest);
  } catch (e) {
    fail("授权未成功", "The grant failed", e);
  }
}

async function showGrant(made, who) {
  $("grant-out").hidden = false;
  $("grant-text").value = made.qr;
  $("grant-out").dataset.digest = made.digest;
  const until = beijingTime(made.grant.expires);
  $("grant-summary").replaceChildren(...bi(`授权 ${who}：${made.grant.purpose}，有效期至 ${until}`,
    `Grant to ${who}: ${made.grant.purpose}, until ${until}`));
  const r = await fetch(`${API}/grants/qr`, { ...FETCH, method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text: made.qr }) });
  if (!r.ok) { $("grant-qr").replaceChildren(...bi("无法生成二维码", "QR code unavailable")); return; }
  const url = URL.createObjectURL(new Blob([await r.arrayBuffer()], { type: "image/svg+xml" }));
  $("grant-qr").replaceChildren(h("img", { src: url, alt: "授权二维码 / grant QR code", id: "grant-qr-img" }));
}

async function revoke(digest) {
  if (!needKey()) return;
  const saved = await dbGet("grants", digest);
  try {
    const statement = await makeRevocation(KEY, digest);
    await api("POST", `/grants/${digest}/revoke`, { revocation: statement });
    await dbPut("grants", digest, { ...saved, status: "revoked" });
    await renderGrants();
    say("ok", "授权已撤回", "Grant revoked", digest);
  } catch (e) {
    fail("撤回未成功", "The revocation failed", e);
  }
}

const GRANT_STATUS = { pending: ["等待上链", "being anchored"], active: ["有效", "active"], revoked: ["已撤回", "revoked"],
  failed: ["上链失败", "not anchored"] };

/** The grants made in this browser, with their status as the node reports it (GET /api/v1/grants/{digest}). */
async function renderGrants() {
  const grants = (await dbAll("grants")).sort((a, b) => b.created - a.created);
  for (const g of grants.filter((x) => x.status !== "revoked")) {
    try {
      const view = await api("GET", `/grants/${g.digest}`);
      if (view.status !== g.status) { g.status = view.status; await dbPut("grants", g.digest, g); }
    } catch (e) { /* offline or another node: keep the last known status */ }
  }
  const expired = (g) => Date.parse(g.grant.expires) <= Date.now();
  $("grant-list").replaceChildren(...grants.map((g) => {
    const button = h("button", { type: "button", class: "btn", disabled: g.status === "revoked" || expired(g), "data-revoke": g.digest },
      bi("撤回", "Revoke"));
    button.addEventListener("click", () => revoke(g.digest));
    const status = expired(g) && g.status === "active" ? ["已过期", "expired"] : GRANT_STATUS[g.status] || [g.status, g.status];
    return h("li", { class: "item" + (g.status === "revoked" ? " revoked" : ""), "data-digest": g.digest, "data-status": g.status },
      h("span", {}, bi(status[0], status[1])),
      h("strong", {}, `${g.grant.purpose}`), button,
      h("span", { class: "sub" }, `${g.certificateName} → ${g.grantee} · ${beijingTime(g.grant.expires)}`));
  }));
}

// ---- start ---------------------------------------------------------------------------------------------------------------
async function main() {
  let saved = null;
  try { saved = localStorage.getItem("lz-lang"); } catch (e) { /* storage may be disabled */ }
  setLang(saved === "en" ? "en" : "zh");
  $("lang-toggle").addEventListener("click", () => setLang(document.documentElement.lang === "en" ? "zh" : "en"));
  if (!window.isSecureContext || !crypto.subtle || !window.indexedDB) {
    fail("此浏览器环境无法保存持证人密钥（需要 HTTPS、WebCrypto 和 IndexedDB）",
      "This browser cannot keep a holder key here (HTTPS, WebCrypto and IndexedDB are needed)");
    return;
  }
  KEY = await loadHolderKey();
  showKey();
  $("key-create").addEventListener("click", async () => {
    try { KEY = await createHolderKey(); showKey(); await renderCerts(); say("ok", "持证人密钥已生成", "Holder key created", KEY.keyId); } catch (e) { fail("无法生成密钥", "Cannot create the key", e); }
  });
  $("cert-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const cert = await openLink($("cert-link").value);
      await dbPut("certificates", cert.identifier, cert);
      SELECTED = cert.identifier;
      $("cert-link").value = "";
      await renderCerts();
      say("ok", "证照已加入卡包", "Certificate added", cert.identifier);
    } catch (e) {
      fail("无法添加证照", "Cannot add the certificate", e);
    }
  });
  $("challenge-photo").addEventListener("change", async (ev) => {
    const file = ev.target.files && ev.target.files[0];
    ev.target.value = "";
    if (!file) return;
    let text = null;
    try { text = await decodePhoto(file); } catch (e) { text = null; }
    if (!text) { fail("图片中未找到二维码", "No QR code found in the image"); return; }
    $("challenge").value = text;
    say("ok", "已读取挑战码，请选择证照后签名出示", "Challenge read: pick the certificate and sign", text.slice(0, 60));
  });
  $("present-form").addEventListener("submit", (ev) => { ev.preventDefault(); present().catch((e) => fail("签名失败", "Signing failed", e)); });
  $("grant-form").addEventListener("submit", (ev) => { ev.preventDefault(); grant(); });
  await renderCerts();
  await renderGrants();
  document.body.dataset.ready = "true";
}

main();
