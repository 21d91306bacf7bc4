/*
 * Rendering (textContent only: nothing from a document, a QR or the server is ever parsed as HTML).
 *
 * The first screen of a phone shows what a citizen needs: the verdict (colour, icon, words, what was and was
 * not checked), the certificate type, holder and issuer, and for a revoked, suspended or superseded
 * certificate when and why (with a link to the successor). The chain details (identifier, BID, account,
 * transaction, batch position) are folded under "技术详情 / technical details".
 *
 * A sealed certificate gets a seal card under the verdict: the seal image over the issuing agency's name with
 * "印章有效" when its `seal` check passed, the failure in words when it did not. The image (the one inside the
 * sealed signature, GET /api/v1/certificates/<id>/seal/image) is shown only once its SHA-256, computed here,
 * equals the digest registered on chain (the check's details.image_sha256). An unsealed certificate gets no card.
 */
import { hex } from "./bytes.js";
import { CHECKS, SEAL, STATUS, VERDICTS, beijingTime, localiseTimes } from "./i18n.js";

export const $ = (id) => document.getElementById(id);

export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role" || k === "href") node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}
export const bi = (zh, en) => [h("span", { class: "zh", lang: "zh-CN" }, zh), h("span", { class: "en", lang: "en" }, en)];

export function show(section, ...children) {
  const node = $(section);
  const items = children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false);
  node.replaceChildren(...items);
  node.hidden = items.length === 0;
  return node;
}
export const progress = (zh, en) => show("progress", zh ? bi(zh, en) : []);

export function notice(kind, zh, en, detail, advice) {
  progress();
  const node = show("notice", h("p", { class: "notice-title" }, bi(zh, en)),
    advice ? h("p", { class: "notice-advice" }, bi(advice[0], advice[1])) : null,
    detail ? h("p", { class: "notice-detail" }, detail) : null);
  node.className = "notice notice-" + kind;
}

// ---- labels -------------------------------------------------------------------------------------------------
let META = { labels: {}, types: {}, members: {}, revocation_reasons: {}, field_codes: [] };
export const setMeta = (meta) => { META = meta; };
export const getMeta = () => META;
const label = (name) => bi(name, META.labels[name] || name);
const display = (v) => (v === null || v === undefined ? "—" : v === true ? bi("是", "yes") : v === false ? bi("否", "no") : String(v));

function row(labelNodes, value, cls) {
  return [h("dt", {}, labelNodes), h("dd", { class: cls || "" }, value === null || value === undefined ? "—" : value)];
}

// GB/T 36905 common metadata first, in the order a paper certificate shows them; other fields follow.
const ORDER = ["证照名称", "证照编号", "持证主体", "持证主体代码", "持证主体代码类型", "颁发机构", "颁发机构代码", "颁发日期",
  "有效期起始", "有效期截止", "属地编码", "证照类型代码", "证照标识"];
const rank = (name) => (ORDER.indexOf(name) + ORDER.length + 1) % (ORDER.length + 1);

// ---- the banner ------------------------------------------------------------------------------------------------
function certificateType(result) {
  const code = result.type_code || (result.fields || {})["证照类型代码"] || (String(result.identifier || "").split(".")[5]);
  const known = META.types[code];
  const zh = (result.fields || {})["证照名称"] || (known && known.name);
  return zh ? [zh, (known && known.name_en) || zh] : null;
}

function statusEvent(result) {
  const check = (result.checks || []).find((c) => c.name === "status" && c.status === "INVALID");
  if (!check) return null;
  const d = check.details || {};
  const when = d.time ? [beijingTime(d.time), beijingTime(d.time)] : d.block !== undefined ? [`区块 ${d.block}`, `block ${d.block}`] : null;
  const reason = d.reason !== undefined ? (META.revocation_reasons[String(d.reason)] || ["其他", "other"]) : null;
  return { when, reason };
}

function banner(result, v) {
  const rows = [];
  const type = certificateType(result);
  if (type) rows.push(row(bi("证照类型", "Certificate"), bi(type[0], type[1])));
  const holder = (result.fields || {})["持证主体"];
  if (holder) rows.push(row(bi("持证主体", "Holder"), holder));
  const iss = result.issuer;
  const issuerName = iss ? iss.name : (result.fields || {})["颁发机构"];
  if (issuerName) rows.push(row(bi("颁发机构", "Issuer"), bi(issuerName, (iss && META.members[iss.uscc]) || issuerName)));
  const event = ["revoked", "suspended", "superseded"].includes(v) ? statusEvent(result) : null;
  if (event && event.when) {
    const what = { revoked: ["撤销时间", "Revoked on"], suspended: ["暂停时间", "Suspended on"], superseded: ["替代时间", "Superseded on"] }[v];
    rows.push(row(bi(what[0], what[1]), bi(event.when[0], event.when[1]), "event-when"));
  }
  if (event && event.reason) rows.push(row(bi("撤销原因", "Reason"), bi(event.reason[0], event.reason[1]), "event-reason"));
  if (v === "superseded" && result.superseded_by) {
    rows.push(row(bi("新证照", "Successor"), h("a", { href: "/v/" + encodeURIComponent(result.superseded_by), id: "successor" },
      bi("查看新证照状态", "status of the new certificate"))));
  }
  return rows.length ? h("dl", { class: "banner", id: "banner" }, rows) : null;
}

// ---- the seal (电子印章) -------------------------------------------------------------------------------------------
const sealCheck = (result) => (result.checks || []).find((c) => c.name === "seal");

function sealCard(result) {
  const c = sealCheck(result);
  if (!c) return null;
  const d = c.details || {};
  if (c.status === "VALID") {
    const img = h("img", { class: "seal-img", id: "seal-image", alt: `电子印章 ${d.name || ""}`, hidden: true });
    const mark = h("p", { class: "seal-mark", id: "seal-mark" }, "✓ ", bi(...SEAL.valid));
    const card = h("section", { class: "card seal seal-valid", id: "seal", "data-seal": "valid" },
      h("div", { class: "seal-stamp" }, h("p", { class: "seal-agency" }, d.agency_name || (result.issuer && result.issuer.name) || d.agency), img),
      mark, h("p", { class: "seal-name" }, `${d.name || ""}（${d.seal}）`),
      d.later ? h("p", { class: "seal-later", id: "seal-later" }, bi(...SEAL.later(d))) : null);
    showSealImage(result.identifier, d.image_sha256, img, card, mark);
    return card;
  }
  const skipped = c.status === "SKIPPED";
  const words = !skipped && SEAL.problems[d.problem] ? SEAL.problems[d.problem](d) : null;
  return h("section", { class: `card seal seal-${skipped ? "skipped" : "invalid"}`, id: "seal", "data-seal": skipped ? "skipped" : d.problem || "invalid" },
    h("p", { class: "seal-mark" }, skipped ? "! " : "✗ ", bi(...(skipped ? SEAL.skipped : SEAL.invalid))),
    words ? h("p", { class: "seal-problem", id: "seal-problem" }, bi(...words)) : null,
    h("p", { class: "seal-reason" }, bi(localiseTimes(c.reason_zh), localiseTimes(c.reason_en))));
}

async function showSealImage(identifier, expected, img, card, mark) {
  let verdict = "unavailable";
  try {
    const r = await fetch(`/api/v1/certificates/${encodeURIComponent(identifier)}/seal/image`,
      { credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" });
    if (r.ok) {
      const bytes = await r.arrayBuffer();
      const digest = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
      verdict = digest === String(expected || "").toLowerCase() ? "verified" : "mismatch";
      if (verdict === "verified") {
        img.src = URL.createObjectURL(new Blob([bytes], { type: r.headers.get("content-type") || "image/png" }));
        await img.decode().catch(() => undefined);
        img.hidden = false;
      }
    }
  } catch (e) { verdict = "unavailable"; }
  card.dataset.sealImage = verdict;
  if (verdict === "mismatch") {  // the seal check passed on the server, but this picture is not the registered one
    card.className = "card seal seal-invalid";
    mark.replaceWith(h("p", { class: "seal-problem", id: "seal-problem" }, "✗ ", bi(...SEAL.served_mismatch)));
  } else if (verdict === "unavailable") {
    card.append(h("p", { class: "seal-reason" }, bi(...SEAL.unavailable)));
  }
}

// ---- the result ------------------------------------------------------------------------------------------------
export function render(result) {
  progress();
  show("notice");
  const v = result.verdict;
  const spec = VERDICTS[v] || { colour: "red", icon: "✗", zh: result.verdict_zh || v, en: result.verdict_en || v, summary: ["", ""] };
  const parts = [];
  // tampered only because of the seal: say so rather than "the content does not match"
  const sealOnly = v === "tampered" && (result.checks || []).every((c) => c.status !== "INVALID" || c.name === "seal");
  const summary = result.summary || (sealOnly ? SEAL.tampered : spec.summary);
  parts.push(h("section", { class: `verdict verdict-${spec.colour}`, id: "verdict", "data-verdict": v, role: "status", "aria-live": "polite" },
    h("div", { class: "verdict-head" },
      h("div", { class: "verdict-icon", "aria-hidden": "true" }, spec.icon),
      h("h1", { class: "verdict-text" }, bi(spec.zh, spec.en))),
    summary && summary[0] ? h("p", { class: "verdict-summary" }, bi(summary[0], summary[1])) : null,
    spec.advice ? h("p", { class: "verdict-advice" }, bi(spec.advice[0], spec.advice[1])) : null,
    banner(result, v),
    result.as_of && result.as_of.block !== undefined ? h("p", { class: "as-of" },
      bi(`截至区块 ${result.as_of.block}${result.as_of.time ? "（" + beijingTime(result.as_of.time) + "）" : ""}${result.mode === "offline" ? "，本机离线核验" : ""}`,
        `as of block ${result.as_of.block}${result.as_of.time ? " (" + beijingTime(result.as_of.time) + ")" : ""}${result.mode === "offline" ? ", verified on this device" : ""}`)) : null));
  parts.push(sealCard(result));
  const shown = result.disclosed_fields || [], hidden = result.hidden_fields || [];
  if (shown.length || hidden.length) {
    const ordered = [...shown].sort((a, b) => rank(a) - rank(b)); // stable: other fields keep tree order
    parts.push(h("section", { class: "card", id: "fields" },
      h("h2", {}, bi(`证照内容（披露 ${shown.length} 项，隐藏 ${hidden.length} 项）`, `Contents (${shown.length} disclosed, ${hidden.length} hidden)`)),
      h("dl", { class: "fields" }, ordered.map((name) => row(label(name), display(result.fields[name])))),
      hidden.length ? h("p", { class: "hidden-fields" }, bi("已隐藏：", "Hidden: "), hidden.map((n) => label(n)).flatMap((l, i) => (i ? ["、", ...l] : l))) : null));
  }
  parts.push(h("section", { class: "card", id: "checks" }, h("h2", {}, bi("核验项", "Checks")),
    h("ul", { class: "checks" }, (result.checks || []).map((c) => h("li", {
      class: `check check-${c.status.toLowerCase()}`, "data-check": c.name, "data-status": c.status,
    }, h("span", { class: "check-name" }, bi(...(CHECKS[c.name] || [c.name, c.name]))),
    h("span", { class: "badge" }, bi(...(STATUS[c.status] || [c.status, c.status]))),
    h("span", { class: "reason" }, bi(localiseTimes(c.reason_zh), localiseTimes(c.reason_en))))))));
  parts.push(technical(result));
  const node = show("result", parts);
  node.dataset.verdict = v;
  node.scrollIntoView({ block: "start" });
}

function technical(result) {
  const rows = [row(bi("证照标识", "Identifier"), result.identifier || "—", "mono")];
  const iss = result.issuer;
  if (iss) {
    rows.push(row(bi("颁发机构区块链标识 BID", "Issuer BID"), iss.bid, "mono"), row(bi("统一社会信用代码", "USCC"), iss.uscc, "mono"),
      row(bi("签发账户", "Account"), iss.account, "mono"));
  }
  const a = result.anchor;
  if (a) {
    if (a.tx_hash) rows.push(row(bi("交易", "Transaction"), a.tx_hash, "mono"));
    rows.push(row(bi("区块", "Block"), String(a.block_number)), row(bi("上链时间（北京时间）", "Anchored at (Beijing time)"), beijingTime(a.block_time)),
      row(bi("批次位置", "Position in batch"), `${a.index + 1} / ${a.size}`));
    if (a.batch_root) rows.push(row(bi("批次根", "Batch root"), a.batch_root, "mono"));
  }
  return h("details", { class: "card technical", id: "technical" },
    h("summary", {}, bi("技术详情", "Technical details")),
    h("dl", { id: "anchor" }, rows));
}
