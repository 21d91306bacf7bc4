/*
 * Lianzheng (链证) verifier page: wiring. Modules:
 *   reference.js -- by-reference links (decrypt here, send only identifier + digest);
 *   offline.js   -- offline codes, decoded and verified here against the cached trust list (trust.js);
 *   photo.js     -- QR codes from photos, pasted or dropped images and the camera (zxing-wasm, jsQR);
 *   render.js    -- the verdict, banner, contents, checks and technical details; i18n.js -- wording;
 *   holders.js   -- grant QR codes (授权他人用证) and holder presentations (本人出示), checked by the node.
 *
 * Once loaded the page works with the network off: the service worker (/sw.js) keeps the page, its scripts,
 * the decoder and /verifier/meta.json; the trust list lives in localStorage. An offline code never leaves
 * this device (the page never calls POST /api/v1/verify/offline).
 */
import { checkPresentation, decodeGrant, decodePresentation, newChallenge, showGrant } from "./holders.js";
import { NOT_OURS, NO_QR_FOUND, PHOTO_ADVICE, beijingTime, splitMessage } from "./i18n.js";
import { verifyOffline } from "./offline.js";
import { decodeFrame, decodePhoto, preloadDecoder } from "./photo.js";
import { verifyReference } from "./reference.js";
import { $, bi, getMeta, notice, progress, render, setMeta, show } from "./render.js";
import { cachedTrustList, refreshTrustList } from "./trust.js";

// ---- language ---------------------------------------------------------------------------------------------
function setLang(lang) {
  document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
  $("lang-toggle").setAttribute("aria-pressed", String(lang === "en"));
  try { localStorage.setItem("lz-lang", lang); } catch (e) { /* storage may be disabled */ }
}

// ---- what was scanned ---------------------------------------------------------------------------------------
function classify(text) {
  const t = text.replace(/[\r\n]+$/, "");
  if (/^LZ\d{1,3}:/.test(t)) return { kind: "offline", text: t };
  const grant = decodeGrant(t.trim());
  if (grant) return { kind: "grant", text: t.trim(), grant };
  const presentation = decodePresentation(t);
  if (presentation) return { kind: "presentation", presentation };
  let url;
  try { url = new URL(t.trim()); } catch (e) { return { kind: "foreign" }; }
  const m = url.pathname.match(/^(.*)\/v\/([^/]+)$/);
  if (!/^https?:$/.test(url.protocol) || !m) return { kind: "foreign" };
  const bases = [location.origin];
  try { const b = new URL(document.body.dataset.publicBase); bases.push(b.origin + b.pathname.replace(/\/$/, "")); } catch (e) { /* none */ }
  if (!bases.includes(url.origin + m[1])) return { kind: "foreign" };
  return { kind: "reference", identifier: decodeURIComponent(m[2]), key: url.hash.slice(1) };
}

async function checkOffline(text) {
  show("result");
  show("notice");
  progress("正在本机核验离线码…", "Checking the offline code on this device…");
  const trust = await cachedTrustList() || (await refreshTrustList()).list;
  if (!trust) {
    notice("bad", "尚无信任列表，无法离线核验", "No trust list yet: offline codes cannot be checked",
      null, ["请联网打开本页一次以下载信任列表。", "Open this page once while online to download the trust list."]);
    return;
  }
  try {
    render(await verifyOffline(text, trust, getMeta()));
  } catch (e) {
    if (!e.code) throw e;
    render({ verdict: "unreadable", identifier: "", checks: [{ name: "integrity", status: "INVALID", reason_zh: e.message, reason_en: e.message }] });
  }
}

async function handleText(text) {
  const scan = classify(text);
  try {
    if (scan.kind === "offline") await checkOffline(scan.text);
    else if (scan.kind === "reference") await verifyReference(scan.identifier, scan.key);
    else if (scan.kind === "grant") await showGrant(scan.text, scan.grant);
    else if (scan.kind === "presentation") await checkPresentation(scan.presentation);
    else {
      show("result");
      notice("foreign", NOT_OURS[0], NOT_OURS[1], text.length > 120 ? text.slice(0, 120) + "…" : text);
    }
  } catch (e) {
    failed(e);
  }
}

function failed(e) {
  // Only a network or server failure gets here: that one may be retried.
  const [zh, en] = splitMessage(e.message);
  render({ verdict: "cannot_verify", identifier: "", checks: [{ name: "anchoring", status: "SKIPPED", reason_zh: zh, reason_en: en }] });
}

async function handleImage(file) {
  show("result");
  show("notice");
  progress("正在识别二维码…", "Reading the QR code…");
  let text = null;
  try { text = await decodePhoto(file); } catch (e) { text = null; }
  if (text === null) notice("bad", NO_QR_FOUND[0], NO_QR_FOUND[1], null, PHOTO_ADVICE);
  else await handleText(text);
}

// ---- camera -----------------------------------------------------------------------------------------------------
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
  progress("请将二维码对准摄像头，充满取景框并保持稳定…", "Point the camera at the QR code, fill the frame and hold steady…");
  const canvas = document.createElement("canvas");
  const tick = async () => {
    if (!stream) return;
    const text = video.readyState >= 2 && video.videoWidth ? await decodeFrame(video, canvas) : null;
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

// ---- images from files, drag and drop, and the clipboard -------------------------------------------------------
function wireImages() {
  $("photo").addEventListener("change", async (ev) => {
    const file = ev.target.files && ev.target.files[0];
    ev.target.value = "";
    if (file) await handleImage(file);
  });
  const zone = $("scanner");
  zone.addEventListener("dragover", (ev) => { ev.preventDefault(); zone.classList.add("dragging"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", async (ev) => {
    ev.preventDefault();
    zone.classList.remove("dragging");
    const file = [...(ev.dataTransfer ? ev.dataTransfer.files : [])].find((f) => f.type.startsWith("image/"));
    if (file) await handleImage(file);
    else if (ev.dataTransfer && ev.dataTransfer.getData("text")) await handleText(ev.dataTransfer.getData("text").trim());
  });
  document.addEventListener("paste", async (ev) => {
    const file = [...(ev.clipboardData ? ev.clipboardData.files : [])].find((f) => f.type.startsWith("image/"));
    if (file) { ev.preventDefault(); await handleImage(file); }
  });
  $("paste-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("paste-text").value.trim();
    if (text) handleText(text);
  });
}

// ---- offline support ----------------------------------------------------------------------------------------------
async function loadMeta() {
  try {
    const r = await fetch("/verifier/meta.json", { credentials: "omit", referrerPolicy: "no-referrer" });
    if (r.ok) setMeta(await r.json());
  } catch (e) { /* offline without a cached copy: labels stay Chinese, offline codes cannot be decoded */ }
}

function showTrust(list, error) {
  const node = $("trust-status");
  if (!list) {
    node.replaceChildren(...bi("尚未下载信任列表（离线核验需要它）", "No trust list yet (needed for offline codes)"));
    return;
  }
  const when = beijingTime(list.asOf.time);
  node.replaceChildren(...bi(`离线核验用信任列表：截至区块 ${list.asOf.block}，${when}（签名已核验）${error ? "；当前离线，使用缓存" : ""}`,
    `Trust list for offline codes: as of block ${list.asOf.block}, ${when} (signature checked)${error ? "; offline, using the cached copy" : ""}`));
  node.dataset.block = String(list.asOf.block);
}

async function main() {
  let saved = null;
  try { saved = localStorage.getItem("lz-lang"); } catch (e) { /* storage may be disabled */ }
  setLang(saved === "en" || (saved === null && document.body.dataset.lang === "en") ? "en" : "zh");
  $("lang-toggle").addEventListener("click", () => setLang(document.documentElement.lang === "en" ? "zh" : "en"));
  $("camera-start").addEventListener("click", () => { startCamera(); });
  $("camera-stop").addEventListener("click", stopCamera);
  $("challenge-new").addEventListener("click", () => { newChallenge().catch(failed); });
  wireImages();
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => undefined);
  await loadMeta();
  preloadDecoder();
  const identifier = document.body.dataset.identifier;
  if (document.body.dataset.page === "reference" && identifier) {
    const run = async () => { try { await verifyReference(identifier, location.hash.slice(1)); } catch (e) { failed(e); } };
    window.addEventListener("hashchange", run); // another key pasted into the same link
    await run();
  }
  const { list, error } = navigator.onLine === false ? { list: await cachedTrustList(), error: true } : await refreshTrustList();
  showTrust(list, error);
  document.body.dataset.ready = "true";
}

main();
