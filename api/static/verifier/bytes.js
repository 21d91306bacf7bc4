/*
 * Byte-level helpers of the verifier page: hex, hashes (WebCrypto), the RFC 6962 Merkle tree, Base45
 * (RFC 9285), zlib inflate (Compression Streams "deflate" = RFC 1950), a strict CBOR decoder (RFC 8949) for
 * the subset LZ2 uses, RFC 8785 canonical JSON for the trust list, and secp256k1 public-key recovery with
 * Ethereum addresses (vendored @noble/secp256k1 and @noble/hashes keccak_256).
 *
 * Every function mirrors a Python one; the reference is named next to it.
 */
import { recoverPublicKey } from "/static/vendor/noble-secp256k1/index.js";
import { keccak_256 } from "/static/vendor/noble-hashes/sha3.js";

export const utf8 = new TextEncoder();

export class FormatError extends Error {
  /** A payload that cannot be read; ``code`` is the registry's PayloadFormatError code. */
  constructor(code, message) { super(message); this.code = code; }
}

export const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
export const unhex = (text) => Uint8Array.from(text.replace(/^0x/, "").match(/../g) || [], (p) => parseInt(p, 16));

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}
export const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

export const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));

export async function hmacSha256(key, message) {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, message));
}

// ---- RFC 6962 §2.1 (registry.crypto.merkle) ------------------------------------------------------------
const LEAF = Uint8Array.of(0), NODE = Uint8Array.of(1);
export const leafHash = (entry) => sha256(concat(LEAF, entry));
export const nodeHash = (left, right) => sha256(concat(NODE, left, right));

/** The root over ``leaves`` (leaf hashes), level by level; an unpaired last node moves up unchanged, which
 * gives the same tree as RFC 6962's split at the largest power of two. */
export async function merkleRoot(leaves) {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  let level = leaves;
  while (level.length > 1) {
    const pairs = [];
    for (let i = 0; i + 1 < level.length; i += 2) pairs.push(nodeHash(level[i], level[i + 1]));
    const next = await Promise.all(pairs);
    if (level.length % 2) next.push(level[level.length - 1]);
    level = next;
  }
  return level[0];
}

/** RFC 9162 §2.1.3.2 steps 1-6 returning the computed root, or null when the path does not fit
 * (registry.formats.offline_payload._root_from_audit_path). ``node`` is the interior-node hash (SHA-256 by
 * default; gm.js nodeHash for the SM3 tree). */
export async function rootFromAuditPath(leaf, index, size, proof, node = nodeHash) {
  let fn = index, sn = size - 1, r = leaf;
  for (const p of proof) {
    if (sn === 0) return null;
    if (fn & 1 || fn === sn) {
      r = await node(p, r);
      while (!(fn & 1) && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await node(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

// ---- Base45, RFC 9285 (registry.formats.base45.b45decode) ------------------------------------------------------
const B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
export function b45decode(text) {
  const values = Array.from(text, (c, i) => {
    const v = B45.indexOf(c);
    if (v < 0) throw new FormatError("invalid_payload", `character ${JSON.stringify(c)} at position ${i} is not Base45`);
    return v;
  });
  if (values.length % 3 === 1) throw new FormatError("truncated_payload", "Base45 text ends with a single character");
  const out = [];
  for (let i = 0; i + 2 < values.length; i += 3) {
    const n = values[i] + values[i + 1] * 45 + values[i + 2] * 2025;
    if (n > 0xffff) throw new FormatError("invalid_payload", `Base45 group at ${i} exceeds 65535`);
    out.push(n >> 8, n & 0xff);
  }
  if (values.length % 3 === 2) {
    const n = values[values.length - 2] + values[values.length - 1] * 45;
    if (n > 0xff) throw new FormatError("invalid_payload", "final Base45 pair exceeds 255");
    out.push(n);
  }
  return Uint8Array.from(out);
}

// ---- zlib (RFC 1950) -----------------------------------------------------------------------------------------
const MAX_INFLATED = 1 << 16; // registry.formats.lz2._MAX_INFLATED: bounds a zlib bomb

export async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  const reader = stream.getReader();
  const chunks = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > MAX_INFLATED) throw new FormatError("invalid_payload", `payload inflates to more than ${MAX_INFLATED} bytes`);
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof FormatError) throw e;
    // The stream reports a cut-short input and corrupt data alike; a short text is what a partial scan gives.
    throw new FormatError("truncated_payload", "the compressed data is cut short or corrupt");
  }
  return concat(...chunks);
}

// ---- CBOR, RFC 8949: unsigned/negative integers, byte and text strings, arrays, maps, false/true/null ----
// Strict like registry.formats.lz2: definite lengths only, shortest-form arguments, map keys unique and in the
// length-first order of RFC 8949 §4.2.3 (what cbor2 canonical=True writes), nothing after the item.
export function cborDecode(bytes, maxDepth = 8) {
  let at = 0;
  const fail = (why) => { throw new FormatError("invalid_payload", `not valid CBOR: ${why} at byte ${at}`); };
  const need = (n) => { if (at + n > bytes.length) fail("unexpected end"); };
  function argument(info) {
    if (info < 24) return info;
    const size = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
    if (!size) fail(`unsupported additional information ${info}`);
    need(size);
    let n = 0n;
    for (let i = 0; i < size; i++) n = (n << 8n) | BigInt(bytes[at + i]);
    at += size;
    const min = { 1: 24n, 2: 256n, 4: 65536n, 8: 4294967296n }[size];
    if (n < min) fail("non-shortest integer encoding");
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) fail("integer beyond 2**53");
    return Number(n);
  }
  function item(depth) {
    if (depth > maxDepth) fail("nested too deeply");
    need(1);
    const start = at;
    const head = bytes[at++], major = head >> 5, info = head & 31;
    if (major === 7) {
      if (info === 20) return false;
      if (info === 21) return true;
      if (info === 22) return null;
      fail(`unsupported simple value ${info}`);
    }
    const n = argument(info);
    switch (major) {
      case 0: return n;
      case 1: return -1 - n;
      case 2: need(n); at += n; return bytes.slice(at - n, at);
      case 3: {
        need(n);
        at += n;
        try { return new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(at - n, at)); } catch (e) { return fail("bad UTF-8"); }
      }
      case 4: return Array.from({ length: n }, () => item(depth + 1));
      case 5: {
        const map = new Map();
        let previous = null;
        for (let i = 0; i < n; i++) {
          const keyStart = at;
          const key = item(depth + 1);
          const encoded = bytes.subarray(keyStart, at);
          if (previous && !keyAfter(encoded, previous)) fail("map keys not in canonical order or repeated");
          previous = encoded;
          map.set(key, item(depth + 1));
        }
        return map;
      }
      default: return fail(`unsupported major type ${major} (byte ${start})`);
    }
  }
  const value = item(0);
  if (at !== bytes.length) fail("bytes after the item");
  return value;
}
function keyAfter(key, previous) { // RFC 8949 §4.2.3: shorter first, then bytewise
  if (key.length !== previous.length) return key.length > previous.length;
  for (let i = 0; i < key.length; i++) if (key[i] !== previous[i]) return key[i] > previous[i];
  return false;
}

// ---- RFC 8785 canonical JSON (strings, integers, booleans, null, arrays, objects: the trust list) --------
export function canonicalJson(value) {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isSafeInteger(value)) throw new Error("only integers are canonicalised here");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return "[" + value.map(canonicalJson).join(",") + "]";
  return "{" + Object.keys(value).sort().map((k) => JSON.stringify(k) + ":" + canonicalJson(value[k])).join(",") + "}";
}

// ---- secp256k1 and Ethereum addresses -------------------------------------------------------------------------
/** The 20-byte account that signed ``digest`` (32 bytes) with ``signature`` = r || s || recid (65 bytes,
 * what coincurve's sign_recoverable writes); null when no key recovers. */
export function recoverAddress(digest, signature) {
  if (signature.length !== 65 || signature[64] > 3) return null;
  try {
    const recovered = concat(Uint8Array.of(signature[64]), signature.subarray(0, 64)); // noble: recid first
    const pub = recoverPublicKey(recovered, digest, { prehash: false, isCompressed: false });
    return keccak_256(pub.subarray(1)).slice(12);
  } catch (e) {
    return null;
  }
}

/** EIP-55 checksummed form of a 20-byte address. */
export function checksumAddress(raw) {
  const lower = hex(raw);
  const digest = hex(keccak_256(utf8.encode(lower)));
  return "0x" + Array.from(lower, (c, i) => (parseInt(digest[i], 16) >= 8 ? c.toUpperCase() : c)).join("");
}
