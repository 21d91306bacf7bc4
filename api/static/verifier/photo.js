/*
 * Reading QR codes from photos and camera frames on this device: zxing-cpp compiled to WebAssembly (vendored
 * zxing-wasm, the same decoder family as the CLI's zxing-cpp, its .wasm served from /static), then the
 * vendored jsQR as a fallback (it also covers a browser where WebAssembly is disabled).
 *
 * A photo goes through zxing with both binarizers the CLI uses (registry/formats/images.py), then at smaller
 * sizes (a dense code photographed large reads better downscaled), then jsQR at several sizes.
 */
const WASM = "/static/vendor/zxing-wasm/zxing_reader.wasm";
const OPTIONS = { formats: ["QRCode"], maxNumberOfSymbols: 1, tryHarder: true, tryRotate: true, tryInvert: true };

let zxingReady = null;
function zxing() {
  if (!zxingReady) {
    zxingReady = (async () => {
      const lib = window.ZXingWASM;
      if (!lib || typeof WebAssembly !== "object") return null;
      await lib.prepareZXingModule({
        overrides: { locateFile: (path, prefix) => (path.endsWith(".wasm") ? WASM : prefix + path) },
        fireImmediately: true,
      });
      return lib;
    })().catch(() => null);
  }
  return zxingReady;
}
/** Start loading the decoder early (the page calls this once; the service worker caches the .wasm). */
export const preloadDecoder = () => zxing();

async function zxingRead(input, binarizer) {
  const lib = await zxing();
  if (!lib) return null;
  try {
    const found = await lib.readBarcodes(input, { ...OPTIONS, binarizer });
    const hit = found.find((r) => r.isValid && r.text);
    return hit ? hit.text : null;
  } catch (e) {
    return null;
  }
}

function pixels(source, width, height, canvas) {
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(source, 0, 0, width, height);
  return ctx.getImageData(0, 0, width, height);
}

function jsqr(img) {
  if (!window.jsQR) return null;
  const code = window.jsQR(img.data, img.width, img.height, { inversionAttempts: "attemptBoth" });
  return code && code.data ? code.data : null;
}

/** The text of the first QR code in an image file, or null. */
export async function decodePhoto(file) {
  const bitmap = await createImageBitmap(file);
  try {
    const canvas = document.createElement("canvas");
    const side = Math.max(bitmap.width, bitmap.height);
    const full = pixels(bitmap, bitmap.width, bitmap.height, canvas);
    for (const binarizer of ["LocalAverage", "GlobalHistogram"]) {
      const text = await zxingRead(full, binarizer);
      if (text) return text;
    }
    const sizes = [side / 2, 1200, 800].filter((t) => t >= 300 && t < side).map(Math.round);
    for (const target of [...new Set(sizes)]) {
      const s = target / side;
      const text = await zxingRead(pixels(bitmap, Math.round(bitmap.width * s), Math.round(bitmap.height * s), canvas), "LocalAverage");
      if (text) return text;
    }
    // jsQR reads a photo best once it is a few hundred pixels across: try the photo at several sizes.
    const targets = [side, side / 2, 1200, 800, 600, side / 3, 400].filter((t) => t <= 2000 && t >= 200 && t <= side);
    for (const target of [...new Set(targets.map(Math.round))]) {
      const s = target / side;
      const text = jsqr(pixels(bitmap, Math.round(bitmap.width * s), Math.round(bitmap.height * s), canvas));
      if (text) return text;
    }
    return null;
  } finally {
    bitmap.close();
  }
}

/** One camera frame: zxing first, jsQR when zxing is unavailable or finds nothing. */
export async function decodeFrame(video, canvas) {
  const s = Math.min(1, 1000 / Math.max(video.videoWidth, video.videoHeight));
  const img = pixels(video, Math.round(video.videoWidth * s), Math.round(video.videoHeight * s), canvas);
  return (await zxingRead(img, "LocalAverage")) || jsqr(img);
}
