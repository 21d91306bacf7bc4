/*
 * Lianzheng (链证) verifier page. JavaScript does two things only: decrypt by-reference documents and scan
 * QR codes; everything else is the server's verdict, rendered here without innerHTML.
 *
 * By reference (/v/<identifier>#<key>): the key is the URL fragment, which the browser never sends
 * (RFC 3986 §3.5). We fetch the ciphertext, decrypt it with WebCrypto AES-256-GCM (W3C Web Cryptography API
 * §25.7; blob = version 0x01 || 12-byte nonce || ciphertext || 16-byte tag, additional data = the identifier
 * in UTF-8), recompute every field leaf and the document's Merkle root here, and send the server only
 * {"identifier", "digest"} (POST /api/v1/verify/digest) for the chain checks.
 *   leaf entry = JSON.stringify({path, salt, value}): for strings, safe integers, booleans and null this is
 *                byte for byte the RFC 8785 canonical JSON the issuer hashed;
 *   leaf hash  = SHA-256(0x00 || UTF-8(entry)); node = SHA-256(0x01 || left || right) (RFC 6962 §2.1);
 *   leaf order = paths sorted by UTF-16 code units (RFC 8785 §3.2.3), which is what Array.prototype.sort does.
 * SM3 is not in WebCrypto: that digest is reported as SKIPPED.
 *
 * Offline payloads (LZ2:...) are sent to POST /api/v1/verify/offline (a by-value code carries its fields
 * in the clear by design); anything else is "not a Lianzheng certificate QR code".
 */
"use strict";

(() => {
  const API = "/api/v1";
  const FETCH = { credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" };
  const RED = new Set(["revoked", "tampered", "unknown_issuer", "not_anchored", "superseded"]);
  const AMBER = new Set(["suspended", "expired", "cannot_verify"]);
  const VERDICTS = {
    valid: ["有效", "Valid"], revoked: ["已撤销", "Revoked"], suspended: ["已暂停", "Suspended"],
    expired: ["已过期", "Expired"], superseded: ["已被更正证照替代", "Superseded"], tampered: ["内容被篡改", "Tampered"],
    unknown_issuer: ["颁发机构未知", "Unknown issuer"], not_anchored: ["未上链", "Not anchored"],
    cannot_verify: ["暂时无法验证", "Cannot verify now"],
  };
  const CHECKS = {
    decrypt: ["解密", "Decryption"], integrity: ["完整性", "Integrity"], sm3: ["SM3 摘要", "SM3 digest"],
    signature: ["签名", "Signature"], anchoring: ["上链", "Anchoring"], issuer: ["颁发机构", "Issuer"],
    status: ["状态", "Status"], validity: ["有效期", "Validity"],
  };
  const STATUS = { VALID: ["通过", "VALID"], INVALID: ["未通过", "INVALID"], SKIPPED: ["跳过", "SKIPPED"] };
  const NOT_OURS = ["这不是链证电子证照二维码", "Not a Lianzheng certificate QR code"];
  const ID_FIELD = "证照标识";
  // GB/T 36905 common metadata first, in the order a paper certificate shows them; other fields follow.
  const ORDER = ["证照名称", "证照编号", "持证主体", "持证主体代码", "持证主体代码类型", "颁发机构", "颁发机构代码", "颁发日期",
    "有效期起始", "有效期截止", "属地编码", "证照类型代码", "证照标识"];
  const rank = (name) => (ORDER.indexOf(name) + ORDER.length + 1) % (ORDER.length + 1);

  const $ = (id) => document.getElementById(id);
  const utf8 = new TextEncoder();

  // ---- DOM helpers (textContent only: nothing from a document or a QR is ever parsed as HTML) -------------
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else node[k] = v;
    }
    for (const c of children.flat(Infinity)) {
      if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }
  const bi = (zh, en) => [h("span", { class: "zh", lang: "zh-CN" }, zh), h("span", { class: "en", lang: "en" }, en)];

  function show(section, ...children) {
    const node = $(section);
    const items = children.flat(Infinity).filter((c) => c !== null && c !== undefined);
    node.replaceChildren(...items);
    node.hidden = items.length === 0;
    return node;
  }
  const progress = (zh, en) => show("progress", zh ? bi(zh, en) : []);

  function notice(kind, zh, en, detail) {
    progress();
    const node = show("notice", h("p", { class: "notice-title" }, bi(zh, en)),
      detail ? h("p", { class: "notice-detail" }, detail) : null);
    node.className = "notice notice-" + kind;
  }

  // ---- language -----------------------------------------------------------------------------------------
  function setLang(lang) {
    document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
    $("lang-toggle").setAttribute("aria-pressed", String(lang === "en"));
    try { localStorage.setItem("lz-lang", lang); } catch (e) { /* storage may be disabled */ }
  }

  // ---- bytes and hashes ---------------------------------------------------------------------------------
  function b64url(text) {
    if (!/^[A-Za-z0-9_-]{43}$/.test(text)) throw new Error("bad key");
    const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=");
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const unhex = (text) => Uint8Array.from(text.match(/../g) || [], (p) => parseInt(p, 16));
  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }
  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const LEAF = Uint8Array.of(0), NODE = Uint8Array.of(1);

  async function merkleRoot(leaves) { // RFC 6962 §2.1, level by level; an unpaired last node moves up unchanged
    if (leaves.length === 0) return sha256(new Uint8Array(0));
    let level = leaves;
    while (level.length > 1) {
      const pairs = [];
      for (let i = 0; i + 1 < level.length; i += 2) pairs.push(sha256(concat(NODE, level[i], level[i + 1])));
      const next = await Promise.all(pairs);
      if (level.length % 2) next.push(level[level.length - 1]);
      level = next;
    }
    return level[0];
  }

  async function documentDigest(doc) {
    const fields = doc.fields || {}, hidden = doc.hidden || {};
    const paths = [...Object.keys(fields), ...Object.keys(hidden)].sort(); // UTF-16 code-unit order
    const leaves = await Promise.all(paths.map((path) => {
      if (Object.prototype.hasOwnProperty.call(hidden, path)) return unhex(hidden[path].sha256);
      const { salt, value } = fields[path];
      return sha256(concat(LEAF, utf8.encode(JSON.stringify({ path, salt, value }))));
    }));
    return hex(await merkleRoot(leaves));
  }

  // ---- the network (same origin only) --------------------------------------------------------------------
  async function postJson(path, body) {
    const r = await fetch(API + path, {
      ...FETCH, method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const data = await r.json().catch(() => null);
    if (!r.ok) {
      const err = new Error((data && data.error && data.error.message) || "HTTP " + r.status);
      err.code = data && data.error && data.error.code;
      err.status = r.status;
      throw err;
    }
    return data;
  }

  const check = (name, status, zh, en) => ({ name, status, reason_zh: zh, reason_en: en, details: {} });
  function localResult(identifier, verdict, checks, doc) {
    return {
      verdict, verdict_zh: VERDICTS[verdict][0], verdict_en: VERDICTS[verdict][1], identifier, checks,
      issuer: null, anchor: null, fields: doc ? fieldValues(doc) : {},
      disclosed_fields: doc ? Object.keys(doc.fields || {}) : [], hidden_fields: doc ? Object.keys(doc.hidden || {}) : [],
      mode: "reference",
    };
  }
  function fieldValues(doc) {
    const out = {};
    for (const [k, f] of Object.entries(doc.fields || {})) out[k] = f.value;
    return out;
  }

  // ---- by reference ----------------------------------------------------------------------------------------
  async function verifyReference(identifier, keyText) {
    show("result");
    show("notice");
    if (!keyText) {
      progress("正在查询状态…", "Checking status…");
      const result = await postJson("/verify", { identifier });
      result.mode = "status";
      render(result, { zh: "链接缺少解密密钥（# 之后的部分），仅核验状态", en: "the link has no key after '#': status only" });
      return;
    }
    let key;
    try { key = b64url(keyText); } catch (e) {
      render(localResult(identifier, "tampered", [check("decrypt", "INVALID", "链接中的解密密钥格式无效",
        "the link's decryption key is malformed")]));
      return;
    }
    progress("正在获取并解密证照…", "Fetching and decrypting…");
    const r = await fetch(`${API}/certificates/${encodeURIComponent(identifier)}/blob`, FETCH);
    if (r.status === 404 || r.status === 422) {
      const result = await postJson("/verify", { identifier }).catch((e) => null);
      render(result || localResult(identifier, "not_anchored", [check("anchoring", "INVALID", "未找到该证照标识",
        "no certificate has this identifier")]));
      return;
    }
    if (!r.ok) throw new Error("HTTP " + r.status);
    const blob = new Uint8Array(await r.arrayBuffer());
    let doc;
    try {
      if (blob[0] !== 1 || blob.length < 29) throw new Error("layout");
      const aes = await crypto.subtle.importKey("raw", key, { name: "AES-GCM" }, false, ["decrypt"]);
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: blob.slice(1, 13), additionalData: utf8.encode(identifier), tagLength: 128 },
        aes, blob.slice(13));
      doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain));
    } catch (e) {
      render(localResult(identifier, "tampered", [check("decrypt", "INVALID",
        "解密失败：二维码中的密钥与证照不匹配，或数据被篡改", "decryption failed: wrong key for this certificate, or tampered data")]));
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
    const nShown = Object.keys(doc.fields || {}).length, nHidden = Object.keys(doc.hidden || {}).length;
    const sm3 = check("sm3", "SKIPPED", "浏览器不支持 SM3（GB/T 32905），仅核验 SHA-256 摘要",
      "SM3 (GB/T 32905) is not available in the browser: only the SHA-256 digest was checked");
    if (problems.length) {
      render(localResult(identifier, "tampered", [check("integrity", "INVALID",
        "本机核验失败：" + problems.map((p) => p[0]).join("；"), "checked on this device: " + problems.map((p) => p[1]).join("; ")), sm3], doc));
      return;
    }
    progress("正在核验链上记录…", "Checking the chain…");
    let result;
    try {
      result = await postJson("/verify/digest", { identifier, digest }); // nothing else leaves this device
    } catch (e) {
      result = localResult(identifier, "cannot_verify", [check("anchoring", "SKIPPED", "无法连接核验服务：" + e.message,
        "verification service unreachable: " + e.message)], doc);
    }
    const integrity = check("integrity", "VALID", `本机已核验 ${nShown} 个字段、${nHidden} 个隐藏字段，SHA-256 摘要一致`,
      `checked on this device: ${nShown} fields, ${nHidden} hidden; the SHA-256 digest matches`);
    integrity.details = { sha256: digest };
    const server = result.checks.find((c) => c.name === "integrity");
    const others = result.checks.filter((c) => c.name !== "integrity");
    // The server's integrity check is INVALID only when the digest is not the one registered: keep that one.
    result.checks = server && server.status === "INVALID" ? [server, sm3, ...others] : [integrity, sm3, ...others];
    result.fields = fieldValues(doc);
    result.disclosed_fields = Object.keys(doc.fields || {});
    result.hidden_fields = Object.keys(doc.hidden || {});
    render(result);
  }

  // ---- offline payloads ------------------------------------------------------------------------------------
  async function verifyOffline(text) {
    show("result");
    show("notice");
    progress("正在核验离线码…", "Checking the offline code…");
    try {
      render(await postJson("/verify/offline", { payload: text }));
    } catch (e) {
      if (e.code === "not_lianzheng_qr") notice("foreign", NOT_OURS[0], NOT_OURS[1], text.slice(0, 120));
      else if (e.status === 422) notice("bad", "离线码无法读取", "The offline code cannot be read", e.message);
      else throw e;
    }
  }

  // ---- rendering -------------------------------------------------------------------------------------------
  function colour(verdict) { return verdict === "valid" ? "green" : AMBER.has(verdict) ? "amber" : "red"; }

  function render(result, note) {
    progress();
    show("notice");
    const v = result.verdict;
    const [zh, en] = VERDICTS[v] || [result.verdict_zh, result.verdict_en];
    const icon = v === "valid" ? "✓" : AMBER.has(v) ? "!" : "✗";
    const parts = [];
    parts.push(h("div", { class: `verdict verdict-${colour(v)}`, id: "verdict", "data-verdict": v },
      h("div", { class: "verdict-icon", ariaHidden: "true" }, icon),
      h("div", { class: "verdict-body" },
        h("h1", { class: "verdict-text" }, bi(zh, en)),
        h("p", { class: "identifier" }, result.identifier || ""),
        result.as_of && result.as_of.block !== undefined ? h("p", { class: "as-of" },
          bi(`截至区块 ${result.as_of.block}${result.as_of.time ? "（" + result.as_of.time + "）" : ""}`,
            `as of block ${result.as_of.block}${result.as_of.time ? " (" + result.as_of.time + ")" : ""}`)) : null,
        note ? h("p", { class: "note" }, bi(note.zh, note.en)) : null)));
    const iss = result.issuer;
    if (iss) {
      parts.push(h("section", { class: "card", id: "issuer" }, h("h2", {}, bi("颁发机构", "Issuing agency")),
        h("dl", {}, row(["名称", "Name"], iss.name), row(["区块链标识 BID", "BID"], iss.bid, "mono"),
          row(["统一社会信用代码", "USCC"], iss.uscc, "mono"), row(["账户", "Account"], iss.account, "mono"))));
    }
    const a = result.anchor;
    if (a) {
      parts.push(h("section", { class: "card", id: "anchor" }, h("h2", {}, bi("上链记录", "Anchoring")),
        h("dl", {}, row(["交易", "Transaction"], a.tx_hash, "mono"), row(["区块", "Block"], a.block_number),
          row(["时间", "Time"], a.block_time), row(["批次位置", "Position in batch"], `${a.index + 1} / ${a.size}`))));
    }
    parts.push(h("section", { class: "card", id: "checks" }, h("h2", {}, bi("核验项", "Checks")),
      h("ul", { class: "checks" }, (result.checks || []).map((c) => h("li", {
        class: `check check-${c.status.toLowerCase()}`, "data-check": c.name, "data-status": c.status,
      }, h("span", { class: "check-name" }, bi(...(CHECKS[c.name] || [c.name, c.name]))),
      h("span", { class: "badge" }, bi(...(STATUS[c.status] || [c.status, c.status]))),
      h("span", { class: "reason" }, bi(c.reason_zh, c.reason_en)))))));
    const shown = result.disclosed_fields || [], hidden = result.hidden_fields || [];
    if (shown.length || hidden.length) {
      const ordered = [...shown].sort((a, b) => rank(a) - rank(b)); // stable: other fields keep tree order
      const rows = ordered.map((name) => row([name, name], display(result.fields[name])));
      parts.push(h("section", { class: "card", id: "fields" },
        h("h2", {}, bi(`证照内容（披露 ${shown.length} 项，隐藏 ${hidden.length} 项）`,
          `Contents (${shown.length} disclosed, ${hidden.length} hidden)`)),
        h("dl", { class: "fields" }, rows),
        hidden.length ? h("p", { class: "hidden-fields" }, bi("已隐藏：", "Hidden: "), hidden.join("、")) : null));
    }
    const node = show("result", parts);
    node.dataset.verdict = v;
    node.scrollIntoView({ block: "start" });
  }
  function row(label, value, cls) {
    return [h("dt", {}, label[0] === label[1] ? label[0] : bi(label[0], label[1])),
      h("dd", { class: cls || "" }, value === null || value === undefined ? "—" : String(value))];
  }
  const display = (v) => v === null || v === undefined ? "—" : v === true ? "是 / yes" : v === false ? "否 / no" : String(v);

  // ---- what was scanned ------------------------------------------------------------------------------------
  function classify(text) {
    const t = text.replace(/[\r\n]+$/, "");
    if (/^LZ\d{1,3}:/.test(t)) return { kind: "offline", text: t };
    let url;
    try { url = new URL(t.trim()); } catch (e) { return { kind: "foreign" }; }
    const m = url.pathname.match(/^(.*)\/v\/([^/]+)$/);
    if (!/^https?:$/.test(url.protocol) || !m) return { kind: "foreign" };
    const bases = [location.origin];
    try { const b = new URL(document.body.dataset.publicBase); bases.push(b.origin + b.pathname.replace(/\/$/, "")); } catch (e) { /* none */ }
    if (!bases.includes(url.origin + m[1])) return { kind: "foreign" };
    return { kind: "reference", identifier: decodeURIComponent(m[2]), key: url.hash.slice(1) };
  }

  async function handleText(text) {
    const scan = classify(text);
    try {
      if (scan.kind === "offline") await verifyOffline(scan.text);
      else if (scan.kind === "reference") await verifyReference(scan.identifier, scan.key);
      else {
        show("result");
        notice("foreign", NOT_OURS[0], NOT_OURS[1], text.length > 120 ? text.slice(0, 120) + "…" : text);
      }
    } catch (e) {
      notice("bad", "核验失败，请稍后重试", "Verification failed; please retry", e.message);
    }
  }

  // ---- decoding images ---------------------------------------------------------------------------------------
  let detector = null;
  async function makeDetector() {
    if (!("BarcodeDetector" in window)) return null;
    try {
      const formats = await window.BarcodeDetector.getSupportedFormats();
      return formats.includes("qr_code") ? new window.BarcodeDetector({ formats: ["qr_code"] }) : null;
    } catch (e) { return null; }
  }

  function jsqrOn(source, width, height, canvas) {
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(source, 0, 0, width, height);
    const img = ctx.getImageData(0, 0, width, height);
    const code = window.jsQR(img.data, width, height, { inversionAttempts: "attemptBoth" });
    return code && code.data ? code.data : null;
  }

  async function decodePhoto(file) {
    const bitmap = await createImageBitmap(file);
    try {
      if (detector) {
        const found = await detector.detect(bitmap).catch(() => []);
        if (found.length) return found[0].rawValue;
      }
      // jsQR reads a photo best once it is a few hundred pixels across: try the photo at several sizes.
      const side = Math.max(bitmap.width, bitmap.height);
      const targets = [side, side / 2, 1200, 800, 600, side / 3, 400].filter((t) => t <= 2000 && t >= 200 && t <= side);
      const canvas = document.createElement("canvas");
      for (const target of [...new Set(targets.map(Math.round))]) {
        const s = target / side;
        const text = jsqrOn(bitmap, Math.round(bitmap.width * s), Math.round(bitmap.height * s), canvas);
        if (text) return text;
      }
      return null;
    } finally {
      bitmap.close();
    }
  }

  // ---- camera ---------------------------------------------------------------------------------------------------
  let stream = null, timer = null;
  async function startCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      notice("bad", "此浏览器无法使用摄像头，请上传照片", "This browser cannot use the camera; upload a photo instead");
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    } catch (e) {
      notice("bad", "无法打开摄像头，请上传照片", "Cannot open the camera; upload a photo instead", e.message);
      return;
    }
    const video = $("video");
    video.srcObject = stream;
    $("camera").hidden = false;
    await video.play().catch(() => undefined);
    progress("请将二维码对准摄像头…", "Point the camera at the QR code…");
    const canvas = document.createElement("canvas");
    const tick = async () => {
      if (!stream) return;
      let text = null;
      if (video.readyState >= 2 && video.videoWidth) {
        if (detector) {
          const found = await detector.detect(video).catch(() => []);
          if (found.length) text = found[0].rawValue;
        }
        if (!text) {
          const s = Math.min(1, 800 / Math.max(video.videoWidth, video.videoHeight));
          text = jsqrOn(video, Math.round(video.videoWidth * s), Math.round(video.videoHeight * s), canvas);
        }
      }
      if (text) { stopCamera(); await handleText(text); } else timer = setTimeout(tick, 150);
    };
    timer = setTimeout(tick, 100);
  }
  function stopCamera() {
    clearTimeout(timer);
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    $("camera").hidden = true;
    progress();
  }

  // ---- wiring ---------------------------------------------------------------------------------------------------
  async function main() {
    let saved = null;
    try { saved = localStorage.getItem("lz-lang"); } catch (e) { /* storage may be disabled */ }
    setLang(saved === "en" ? "en" : "zh");
    $("lang-toggle").addEventListener("click", () => setLang(document.documentElement.lang === "en" ? "zh" : "en"));
    $("camera-start").addEventListener("click", () => { startCamera(); });
    $("camera-stop").addEventListener("click", stopCamera);
    $("photo").addEventListener("change", async (ev) => {
      const file = ev.target.files && ev.target.files[0];
      ev.target.value = "";
      if (!file) return;
      show("result");
      show("notice");
      progress("正在识别二维码…", "Reading the QR code…");
      let text = null;
      try { text = await decodePhoto(file); } catch (e) { text = null; }
      if (text === null) notice("bad", "图片中未找到二维码", "No QR code found in the image");
      else await handleText(text);
    });
    $("paste-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const text = $("paste-text").value.trim();
      if (text) handleText(text);
    });
    detector = await makeDetector();
    const identifier = document.body.dataset.identifier;
    if (document.body.dataset.page === "reference" && identifier) {
      try {
        await verifyReference(identifier, location.hash.slice(1));
      } catch (e) {
        notice("bad", "核验失败，请稍后重试", "Verification failed; please retry", e.message);
      }
    }
    document.body.dataset.ready = "true";
  }

  main();
})();
