/*
 * The verifier page's service worker (served as /sw.js, scope "/"): keeps the page, its modules, the QR
 * decoders and /verifier/meta.json so that the scanner opens and verifies offline codes with no network.
 *
 * Pages and assets: network first (a deployment's new files win when online), the cached copy when offline.
 * A /v/<identifier> page opened offline gets the cached scanner (a by-reference link needs the network).
 * API calls are never cached here and never answered from the cache: the trust list lives in localStorage,
 * checked against its signature each time it is read.
 */
const CACHE = "lianzheng-verifier-v5";
const SHELL = [
  "/verify", "/verifier/meta.json", "/manifest.webmanifest",
  "/static/verifier/verifier.css", "/static/verifier/main.js", "/static/verifier/bytes.js", "/static/verifier/i18n.js",
  "/static/verifier/offline.js", "/static/verifier/photo.js", "/static/verifier/reference.js", "/static/verifier/render.js",
  "/static/verifier/trust.js", "/static/verifier/gm.js", "/static/verifier/holders.js", "/static/verifier/icon-192.png", "/static/verifier/icon-512.png",
  "/static/vendor/jsQR.js", "/static/vendor/zxing-wasm/zxing-reader.js", "/static/vendor/zxing-wasm/zxing_reader.wasm",
  "/static/vendor/noble-secp256k1/index.js", "/static/vendor/noble-hashes/sha3.js", "/static/vendor/noble-hashes/_u64.js",
  "/static/vendor/noble-hashes/utils.js",
  "/static/vendor/sm-crypto/sm2.js", "/static/vendor/sm-crypto/sm3.js", "/static/vendor/sm-crypto/sm4.js",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

function cacheable(url) {
  return url.pathname === "/verify" || url.pathname === "/" || url.pathname === "/verifier/meta.json" ||
    url.pathname === "/manifest.webmanifest" || url.pathname.startsWith("/static/");
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  const page = request.mode === "navigate" && url.pathname.startsWith("/v/");
  if (!cacheable(url) && !page) return; // the API and everything else: straight to the network
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const response = await fetch(request);
      if (response.ok && !page) await cache.put(request, response.clone());
      return response;
    } catch (e) {
      const hit = await cache.match(page ? "/verify" : request, { ignoreSearch: true });
      if (hit) return hit;
      throw e;
    }
  })());
});
