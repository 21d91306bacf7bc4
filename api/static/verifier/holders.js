/*
 * Holders on the verifier page (issue 15): grants (授权他人用证) and presentations by the holder (本人出示).
 *
 * A grant QR (lianzheng:grant:<base64url of the signed grant's RFC 8785 JSON>[.<grantee salt>],
 * registry/holders/grants.py) is decoded here to show what it grants; whether it authorises the person or agency
 * in front of the verifier is asked of the node (POST /api/v1/grants/verify): a person presents with their ID
 * number (checked against the grant's salted grantee digest: the number is never in the grant, and the answer
 * only echoes it masked), an agency with its API key. The answer is "由 X 代表持证人 Y 出示，用途 P，有效期至 T /
 * presented by X on behalf of holder Y, for purpose P, until T", or the reason in words (expired, revoked by the
 * holder, wrong party, fields outside the grant, ...).
 *
 * A presentation (the wallet's {"document", "presentation"}: the certificate and the holder key's signature over
 * this node's challenge, registry/holders/presentation.py) is verified by POST /api/v1/presentations: the
 * certificate as a presented document, then "持证人本人出示 / presented by its holder" or "他人出示（仅核验状态）/
 * shown by someone else (status only)" with the reason. The challenge comes from POST /api/v1/presentations/challenge
 * (single use, 5 minutes), shown here for the holder to copy into the wallet.
 */
import { hex, sha256 } from "./bytes.js";
import { beijingTime } from "./i18n.js";
import { $, bi, h, progress, render, show } from "./render.js";

const API = "/api/v1";
const FETCH = { credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" };
export const GRANT_PREFIX = "lianzheng:grant:";

function unb64url(text) {
  if (!/^[A-Za-z0-9_-]+$/.test(text) || text.length % 4 === 1) throw new Error("not base64url");
  const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

async function post(path, body, headers) {
  const r = await fetch(API + path, { ...FETCH, method: "POST", headers: { "Content-Type": "application/json", ...(headers || {}) },
    body: JSON.stringify(body) });
  const data = await r.json().catch(() => null);
  if (!r.ok) {
    const err = (data && data.error) || {};
    const e = new Error(err.message || "HTTP " + r.status);
    e.code = err.code || "http_" + r.status;
    e.status = r.status;
    throw e;
  }
  return data;
}

/** The grant a grant QR carries (not yet checked: the node does that), or null when the text is not one. */
export function decodeGrant(text) {
  if (!text.startsWith(GRANT_PREFIX)) return null;
  const [body, salt] = text.slice(GRANT_PREFIX.length).split(".", 2);
  try {
    const grant = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(unb64url(body)));
    return grant && grant.type === "LianzhengGrant" ? { grant, salt: salt || null } : null;
  } catch (e) {
    return null;
  }
}

/** Is this pasted text a presentation package ({"document", "presentation"})? */
export function decodePresentation(text) {
  if (!text.trim().startsWith("{")) return null;
  try {
    const obj = JSON.parse(text);
    return obj && typeof obj.document === "object" && obj.presentation && obj.presentation.type === "LianzhengPresentation" ? obj : null;
  } catch (e) {
    return null;
  }
}

/** The holder key id (SHA-256 of the SPKI, hex) a grant names, shortened for display. */
async function keyId(spki) {
  try { return hex(await sha256(unb64url(String(spki)))).slice(0, 16) + "…"; } catch (e) { return "?"; }
}

const row = (zh, en, value) => [h("dt", {}, bi(zh, en)), h("dd", {}, value)];

/** The grant card: what it says, a form for the presenting party, and the node's answer. */
export async function showGrant(text, decoded) {
  show("notice");
  const g = decoded.grant;
  const person = g.grantee && g.grantee.kind === "person";
  const form = h("form", { class: "paste", id: "grant-party" },
    person
      ? [h("label", { for: "party-id" }, bi("出示人居民身份证号", "The presenting person's ID number")),
        h("input", { id: "party-id", autocomplete: "off", spellcheck: false, required: true })]
      : [h("label", { for: "party-key" }, bi("本机构（被授权机构）API 密钥", "This agency's API key (the grantee agency)")),
        h("input", { id: "party-key", type: "password", autocomplete: "off", required: true })],
    h("button", { type: "submit", class: "btn primary" }, bi("核验授权", "Check the grant")));
  const card = h("section", { class: "card", id: "grant", "data-grant-kind": g.grantee ? g.grantee.kind : "" },
    h("h2", {}, bi("授权用证", "Grant to use a certificate")),
    h("dl", {},
      row("用途（申请事由）", "Purpose", String(g.purpose || "")),
      row("被授权人", "Grantee", person ? bi("个人（身份证号已加盐摘要）", "a person (salted ID digest)") : bi("机构", "an agency")),
      row("有效期至", "Until", beijingTime(g.expires)),
      row("可用字段", "Fields", g.fields ? g.fields.join("、") : bi("全部", "all")),
      row("持证人密钥标识", "Holder key id", h("span", { class: "mono", id: "grant-holder-key" }, await keyId(g.holder_key)))),
    form, h("div", { id: "grant-answer" }));
  show("result", card);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    await checkGrant(text, decoded);
  });
}

async function checkGrant(text, decoded) {
  const person = decoded.grant.grantee.kind === "person";
  const body = { qr: text };
  let headers = {};
  if (person) {
    if (!decoded.salt) { answer(null, ["授权码缺少被授权人盐值，请扫描完整的授权二维码", "The grant code has no grantee salt: scan the whole grant QR"]); return; }
    body.person = { id_number: $("party-id").value.trim().toUpperCase(), salt: decoded.salt };
  } else {
    headers = { Authorization: "Bearer " + $("party-key").value.trim() };
  }
  progress("正在核验授权…", "Checking the grant…");
  try {
    answer(await post("/grants/verify", body, headers));
  } catch (e) {
    answer(null, [`无法核验授权：${e.message}`, `cannot check the grant: ${e.message}`], e.code);
  }
  progress();
}

function answer(result, error, code) {
  const node = $("grant-answer");
  if (!result) {
    node.replaceChildren(h("div", { class: "verdict verdict-grey", id: "grant-verdict", "data-ok": "false", "data-reason": code || "error" },
      h("p", { class: "verdict-summary" }, bi(error[0], error[1]))));
    return;
  }
  const d = result.delegation || {};
  const by = (d.presented_by && d.presented_by.name) || "?";
  const holder = (d.on_behalf_of && d.on_behalf_of.holder) || `密钥 ${String((d.on_behalf_of || {}).holder_key || "").slice(0, 16)}…`;
  const holderEn = (d.on_behalf_of && d.on_behalf_of.holder) || `key ${String((d.on_behalf_of || {}).holder_key || "").slice(0, 16)}…`;
  const until = beijingTime(d.until);
  const text = result.ok
    ? [`由 ${by} 代表持证人 ${holder} 出示，用途：${d.purpose}，有效期至 ${until}`,
      `presented by ${by} on behalf of holder ${holderEn}, for purpose ${d.purpose}, until ${until}`]
    : [`授权无效：${result.reason_zh}`, `The grant does not authorise this use: ${result.reason_en}`];
  node.replaceChildren(h("div", { class: `verdict verdict-${result.ok ? "green" : "red"}`, id: "grant-verdict",
    "data-ok": String(result.ok), "data-reason": result.reason || "" },
  h("div", { class: "verdict-head" }, h("div", { class: "verdict-icon", "aria-hidden": "true" }, result.ok ? "✓" : "✗"),
    h("h1", { class: "verdict-text" }, result.ok ? bi("授权有效", "Grant valid") : bi("授权无效", "Grant not valid"))),
  h("p", { class: "verdict-summary", id: "grant-text" }, bi(text[0], text[1]))));
}

/** Verify a presentation package and show the certificate's verdict with how it was presented. */
export async function checkPresentation(pkg) {
  show("notice");
  progress("正在核验出示凭证…", "Checking the presentation…");
  const result = await post("/presentations", { document: pkg.document, presentation: pkg.presentation });
  const p = result.presentation || { verdict: "status_only", reason: "no_signature", reason_zh: "未签名", reason_en: "not signed" };
  const byHolder = p.verdict === "presented_by_holder";
  const check = byHolder
    ? { name: "presentation", status: "VALID", reason_zh: "持证人本人出示：持证人密钥签署了本节点刚签发的挑战码",
      reason_en: "presented by its holder: the holder key signed this node's fresh challenge" }
    : { name: "presentation", status: "INVALID", reason_zh: `他人出示（仅核验状态）：${p.reason_zh}`,
      reason_en: `shown by someone else (status only): ${p.reason_en}` };
  render({ ...result, checks: [check, ...(result.checks || [])] });
  const node = $("result");
  node.dataset.presentation = p.verdict;
  node.dataset.presentationReason = p.reason || "";
  const banner = h("p", { class: "presentation-banner", id: "presentation-banner" },
    byHolder ? bi("持证人本人出示", "Presented by its holder") : bi(`他人出示（仅核验状态）：${p.reason_zh}`, `Shown by someone else (status only): ${p.reason_en}`));
  $("verdict").append(banner);
}

/** A fresh challenge for the holder (single use, 5 minutes): its QR code for the wallet to scan, and its text. */
export async function newChallenge() {
  const made = await post("/presentations/challenge/qr", {});
  const out = $("challenge-out");
  out.hidden = false;
  $("challenge-text").value = JSON.stringify(made.challenge);
  const url = URL.createObjectURL(new Blob([made.svg], { type: "image/svg+xml" }));
  $("challenge-qr").replaceChildren(h("img", { src: url, alt: "挑战码二维码 / challenge QR code", id: "challenge-qr-img" }));
  out.dataset.nonce = made.challenge.nonce;
  out.dataset.qr = made.text;
  return made.challenge;
}
