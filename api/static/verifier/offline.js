/*
 * Offline (by-value) codes, decoded and verified entirely on this device: nothing of the payload leaves it.
 *
 * Decoding follows registry/formats/lz2.py and offline_payload.py (format LZ2):
 *   text      = "LZ2:" || Base45(zlib(envelope))
 *   envelope  = CBOR [body: bstr, [signed_at, r || s || recid (65 bytes)]]                           (intl)
 *             / CBOR [body: bstr, [signed_at, key_id (8 bytes), SM2 DER signature]]                   (gm)
 *             / CBOR [body: bstr, signature: bstr]  r || s || recid over SHA-256(body)   (the first intl form)
 * A code carries its batch's statement (registry/formats/batch_statement.py): the issuer's signature over
 * "LZ-BATCH-1" || chain_id (8, BE) || ledger (20) || batch root (32) || SM3 batch root (32, the trust list's
 * for that batch, zeros if none) || signed_at (8, BE). intl: secp256k1 over SHA-256 of those bytes, and the
 * account that recovers must be a member's; gm: SM2, the key is looked up by its id in the trust list (format
 * 2) and must be valid at signed_at. A checked statement is remembered for the rest of its batch.
 *   body      = CBOR [2, identifier, type_code, salt_seed, disclosed, hidden, index, size, proof, chain_id,
 *                     ledger, block_number, block_timestamp, ? sm3: [hidden SM3 leaf hashes, SM3 audit path]]
 * With the optional SM3 part the page recomputes the SM3 document digest and SM3 batch root (gm.js, sm-crypto)
 * and compares it with the SM3 root the trust list says was anchored beside the batch's SHA-256 root.
 * Field names are codes into FIELD_CODES (from /verifier/meta.json, generated from the Python table); text
 * values stored as byte strings are GB 18030. With a salt seed every salt is
 * HMAC-SHA256(seed, "lianzheng/salt/1" || UTF-8(path))[:16].
 *
 * Verification mirrors registry.certificates.offline.OfflineVerifier check by check (integrity, anchoring,
 * signature, issuer, status, validity), against the trust list cached by the page.
 */
import {
  FormatError, b45decode, cborDecode, checksumAddress, concat, hex, hmacSha256, inflate, leafHash, merkleRoot,
  recoverAddress, rootFromAuditPath, sha256, unhex, utf8,
} from "./bytes.js";
import { gm } from "./gm.js";
import { beijingDate, beijingTime } from "./i18n.js";

const SALT_LABEL = utf8.encode("lianzheng/salt/1");
const ID = "证照标识", ISSUER_NAME = "颁发机构", ISSUER_CODE = "颁发机构代码", FROM = "有效期起始", UNTIL = "有效期截止";
const ID_PARTS = /^1\.2\.156\.3005\.2\.([0-9A-Z]{18}[0-9]{3})\.([0-9A-Z]{18})\.[0-9A-Z]{1,20}\.[0-9]{3}\.[0-9A-Z*]$/;

const invalid = (why) => new FormatError("invalid_payload", why);

/** Decode an ``LZ2:`` text into {identifier, typeCode, disclosed: Map(name -> [salt, value]), hidden: Map(name
 * -> leaf), index, size, proof, chainId, ledger, blockNumber, blockTimestamp, signer (20 bytes or null)}. */
export async function decodeOffline(text, meta) {
  const m = /^LZ(\d{1,3}):/.exec(text);
  if (!m) throw new FormatError("not_lianzheng_qr", "not an offline code");
  if (m[1] !== "2") throw new FormatError("unsupported_version", `unsupported offline code version LZ${m[1]}`);
  const envelope = cborDecode(await inflate(b45decode(text.slice(m[0].length))));
  const isStatement = (x) => Array.isArray(x) && Number.isSafeInteger(x[0]) && x[0] >= 0 && (
    (x.length === 2 && x[1] instanceof Uint8Array && x[1].length === 65) ||
    (x.length === 3 && x[1] instanceof Uint8Array && x[1].length === 8 && x[2] instanceof Uint8Array &&
     x[2].length >= 8 && x[2].length <= 72));
  if (!Array.isArray(envelope) || envelope.length !== 2 || !(envelope[0] instanceof Uint8Array) ||
      !(envelope[1] instanceof Uint8Array || isStatement(envelope[1]))) {
    throw invalid("envelope must be [body, signature] or [body, statement]");
  }
  const [bodyBytes, signed] = envelope;
  const statement = !Array.isArray(signed) ? null : signed.length === 2
    ? { signedAt: signed[0], keyId: null, signature: signed[1] }  // intl: the signer recovers
    : { signedAt: signed[0], keyId: signed[1], signature: signed[2] };
  const body = cborDecode(bodyBytes);
  if (!Array.isArray(body) || (body.length !== 13 && body.length !== 14)) {
    throw invalid("body must be an array of 13 items (14 with the SM3 part)");
  }
  const [version, identifier, typeCode, seed, disclosed, hidden, index, size, proof, chainId, ledger, blockNumber,
    blockTimestamp, sm3] = body;
  if (sm3 !== undefined && !(Array.isArray(sm3) && sm3.length === 2 && sm3[0] instanceof Map &&
      sm3[1] instanceof Uint8Array && proof instanceof Uint8Array && sm3[1].length === proof.length &&
      sm3[0].size === (hidden instanceof Map ? hidden.size : -1) &&
      [...sm3[0].values()].every((h) => h instanceof Uint8Array && h.length === 32))) {
    throw invalid("the SM3 part must be [hidden SM3 leaf hashes, SM3 audit path of the proof's length]");
  }
  if (version !== 2) throw new FormatError("unsupported_version", `body says version ${version}`);
  const isInt = (v) => Number.isSafeInteger(v) && v >= 0;
  if (typeof identifier !== "string" || typeof typeCode !== "string" || !(seed instanceof Uint8Array) ||
      !(disclosed instanceof Map) || !(hidden instanceof Map) || ![index, size, chainId, blockNumber, blockTimestamp].every(isInt) ||
      !(proof instanceof Uint8Array) || proof.length % 32 || !(ledger instanceof Uint8Array) || ledger.length !== 20 ||
      (seed.length !== 0 && seed.length !== 16) || index >= size) {
    throw invalid("body items have the wrong types or sizes");
  }
  const name = (key) => {
    if (typeof key === "string" && key) return key;
    if (Number.isInteger(key) && key >= 0 && key < meta.field_codes.length) return meta.field_codes[key];
    throw invalid(`unknown field code ${key}`);
  };
  const gb = new TextDecoder("gb18030", { fatal: true });
  const unpack = (v) => {
    if (v instanceof Uint8Array) { try { return gb.decode(v); } catch (e) { throw invalid("a value is not GB 18030 text"); } }
    if (v === null || typeof v === "string" || typeof v === "boolean" || Number.isSafeInteger(v)) return v;
    throw invalid("a value has an unsupported type");
  };
  const shown = new Map();
  for (const [key, item] of disclosed) {
    const path = name(key);
    if (seed.length) {
      const salt = (await hmacSha256(seed, concat(SALT_LABEL, utf8.encode(path)))).slice(0, 16);
      shown.set(path, [salt, unpack(item)]);
    } else if (Array.isArray(item) && item.length === 2 && item[0] instanceof Uint8Array && item[0].length === 16) {
      shown.set(path, [item[0], unpack(item[1])]);
    } else {
      throw invalid(`field ${path} must be [salt, value]`);
    }
  }
  const leaves = new Map();
  for (const [key, leaf] of hidden) {
    const path = name(key);
    if (!(leaf instanceof Uint8Array) || leaf.length !== 32 || shown.has(path)) throw invalid(`hidden field ${path} is malformed`);
    leaves.set(path, leaf);
  }
  if (seed.length && leaves.size) throw invalid("a payload with hidden fields must not carry a salt seed");
  const sm3Hidden = new Map(sm3 === undefined ? [] : [...sm3[0]].map(([k, h]) => [name(k), h]));
  if ([...sm3Hidden.keys()].some((k) => !leaves.has(k))) throw invalid("the SM3 part must hash the hidden fields");
  return {
    identifier, typeCode, disclosed: shown, hidden: leaves, index, size, chainId, ledger, blockNumber, blockTimestamp,
    hasSm3: sm3 !== undefined, sm3Hidden,
    sm3Proof: sm3 === undefined ? null : Array.from({ length: sm3[1].length / 32 }, (_, i) => sm3[1].slice(i * 32, i * 32 + 32)),
    proof: Array.from({ length: proof.length / 32 }, (_, i) => proof.slice(i * 32, i * 32 + 32)),
    statement,
    signer: statement ? null : recoverAddress(await sha256(bodyBytes), signed),
  };
}

/** The document digest: the RFC 6962 root over the fields' leaves in UTF-16 path order (JS sort order); with
 * ``g`` (gm.js primitives) the SM3 digest from the SM3 leaf hashes of the hidden fields. */
export async function documentDigest(p, g) {
  const paths = [...p.disclosed.keys(), ...p.hidden.keys()].sort();
  const leaves = await Promise.all(paths.map((path) => {
    if (p.hidden.has(path)) return g ? p.sm3Hidden.get(path) : p.hidden.get(path);
    const [salt, value] = p.disclosed.get(path);
    const entry = utf8.encode(JSON.stringify({ path, salt: hex(salt), value }));
    return g ? g.leafHash(entry) : leafHash(entry);
  }));
  return g ? g.merkleRoot(leaves) : merkleRoot(leaves);
}

const verifiedStatements = new Set(); // hex of (key || statement || signature) already verified: once per batch
const statementSigners = new Map(); // hex of (statement || signature) -> the account that recovers (intl)

function statementBytes(p, root, sm3Root) {
  const out = new Uint8Array(110);
  const view = new DataView(out.buffer);
  out.set(utf8.encode("LZ-BATCH-1"), 0);
  view.setBigUint64(10, BigInt(p.chainId));
  out.set(p.ledger, 18);
  out.set(root, 38);
  if (sm3Root) out.set(sm3Root, 70);
  view.setBigUint64(102, BigInt(p.statement.signedAt));
  return out;
}

// ---- verification ----------------------------------------------------------------------------------------------

class Run {
  constructor() { this.checks = []; this.verdicts = new Set(); }
  add(name, status, zh, en, verdict, details) {
    this.checks.push({ name, status, reason_zh: zh, reason_en: en, details: details || {} });
    if (verdict) this.verdicts.add(verdict);
  }
}
// registry.certificates.verification._PRECEDENCE
const PRECEDENCE = ["tampered", "unknown_issuer", "not_anchored", "cannot_verify", "revoked", "superseded", "suspended",
  "not_yet_valid", "expired"];

export async function verifyOffline(text, trust, meta) {
  const p = await decodeOffline(text, meta);
  const digest = await documentDigest(p);
  const root = await rootFromAuditPath(await leafHash(digest), p.index, p.size, p.proof);
  const run = new Run();
  const out = {};
  const m = ID_PARTS.exec(p.identifier);
  const cid = m ? [m[1], m[2]] : null;
  const batch = integrityAndAnchoring(run, p, cid, root, trust, out);
  const g = (batch && p.hasSm3) || (p.statement && p.statement.keyId) ? await gm() : null;
  if (batch) await checkSm3(run, p, root, trust, g);
  let signer = p.signer ? checksumAddress(p.signer) : null, member;
  if (p.statement && !p.statement.keyId) [member, signer] = await accountStatement(run, p, root, trust);
  else member = p.statement ? statementSigner(run, p, root, trust, g) : signature(run, signer, trust);
  issuer(run, p, cid, member, batch, trust);
  status(run, digest, trust, meta);
  validity(run, p);
  const verdict = PRECEDENCE.find((v) => run.verdicts.has(v)) || "valid";
  return {
    verdict, identifier: p.identifier, checks: run.checks, mode: "offline",
    issuer: member ? { uscc: member.uscc, name: member.name, bid: member.bid, account: signer, status: member.status,
      ...(p.statement && p.statement.keyId ? { sm2_key_id: hex(p.statement.keyId) } : {}) } : null,
    anchor: out.anchor || null,
    fields: Object.fromEntries([...p.disclosed].map(([k, [, v]]) => [k, v])),
    disclosed_fields: [...p.disclosed.keys()], hidden_fields: [...p.hidden.keys()], type_code: p.typeCode,
    as_of: { block: trust.asOf.block, time: trust.asOf.time, source: "trust_list" },
    revocation: out.revocation || null,
  };
}

function bindingProblems(p, cid) {
  const problems = cid ? [] : [`identifier ${p.identifier.slice(0, 80)} is malformed`];
  const shownId = p.disclosed.get(ID);
  if (!shownId || shownId[1] !== p.identifier) problems.push(`field ${ID} must be shown and equal the identifier`);
  if (cid) {
    if (p.typeCode !== cid[0]) problems.push(`type ${p.typeCode} differs from the identifier's type ${cid[0]}`);
    const code = p.disclosed.get(ISSUER_CODE);
    if (code && code[1] !== cid[1]) problems.push(`${ISSUER_CODE} ${code[1]} differs from the identifier's issuer ${cid[1]}`);
  }
  return problems;
}

function integrityAndAnchoring(run, p, cid, root, trust, out) {
  const asOf = trust.asOf.block, when = beijingTime(p.blockTimestamp);
  if (p.chainId !== trust.chainId || (trust.ledger && "0x" + hex(p.ledger) !== trust.ledger)) {
    run.add("integrity", "SKIPPED", "该证照属于另一条链，无法用本信任列表核验", "the certificate belongs to another chain: this trust list cannot check it");
    run.add("anchoring", "INVALID", "该证照锚定在另一条链或另一个合约上", `anchored on chain ${p.chainId}, not this consortium's chain ${trust.chainId}`, "not_anchored");
    return null;
  }
  const batch = root ? trust.batches.get(hex(root)) : undefined;
  out.anchor = { batch_root: root ? hex(root) : null, index: p.index, size: p.size, tx_hash: batch ? batch[2] : null,
    block_number: p.blockNumber, block_time: when, chain_id: p.chainId, ledger: "0x" + hex(p.ledger) };
  const problems = bindingProblems(p, cid);
  const nShown = p.disclosed.size, nHidden = p.hidden.size;
  if (problems.length) {
    run.add("integrity", "INVALID", "二维码内容被改动：" + problems.join("; "), "the QR contents were altered: " + problems.join("; "), "tampered");
  } else if (!batch && p.blockNumber <= asOf) {
    run.add("integrity", "INVALID", `字段、隐藏字段摘要或默克尔证明被改动：得出的批次根未上链（截至区块 ${asOf}）`,
      `a field, hidden leaf hash or proof step was altered: they lead to a batch root that was not anchored (as of block ${asOf})`, "tampered");
  } else if (!batch) {
    run.add("integrity", "SKIPPED", `批次声明于区块 ${p.blockNumber} 上链，晚于信任列表（区块 ${asOf}）：请联网更新信任列表`,
      `the batch claims block ${p.blockNumber}, after the trust list (block ${asOf}): go online to update it`);
  } else {
    run.add("integrity", "VALID", `本机已核验 ${nShown} 个字段、${nHidden} 个隐藏字段；字段与证明得出已上链的批次根（SHA-256）`,
      `checked on this device: ${nShown} fields, ${nHidden} hidden; with the proof they lead to an anchored batch root (SHA-256)`);
  }
  if (!batch) {
    run.add("anchoring", p.blockNumber > asOf ? "SKIPPED" : "INVALID", `批次根不在信任列表中（截至区块 ${asOf}）`,
      `the batch root is not in the trust list (as of block ${asOf})`);
    return null;
  }
  const [block] = batch;
  if (block !== p.blockNumber) {
    run.add("anchoring", "INVALID", `声明的区块 ${p.blockNumber} 与实际上链区块 ${block} 不符`,
      `claims block ${p.blockNumber}, the batch was anchored in block ${block}`, "tampered");
    return null;
  }
  run.add("anchoring", "VALID", `已于区块 ${block}（${when}）上链（据信任列表，截至区块 ${asOf}）`,
    `anchored in block ${block} at ${when} (per the trust list as of block ${asOf})`);
  return batch;
}

async function checkSm3(run, p, root, trust, g) {
  const anchored = trust.sm3Roots.get(hex(root));
  if (!p.hasSm3 || !anchored) {
    const [zh, en] = !p.hasSm3 ? ["二维码", "the payload"] : ["信任列表", "the trust list"];
    run.add("sm3", "SKIPPED", `${zh}没有 SM3 批次证明，无法核验 SM3`, `${en} has no SM3 part for this batch: SM3 not checked`);
    return;
  }
  const digest = await documentDigest(p, g);
  const computed = await rootFromAuditPath(g.leafHash(digest), p.index, p.size, p.sm3Proof, g.nodeHash);
  if (!computed || hex(computed) !== anchored) {
    run.add("sm3", "INVALID", "SM3 摘要及其默克尔证明与已上链的 SM3 批次根不符",
      "the SM3 digest and its audit path do not lead to the SM3 batch root anchored on chain", "tampered");
  } else {
    run.add("sm3", "VALID", "本机已计算 SM3 摘要，经默克尔证明得出已上链的 SM3 批次根（GB/T 32905）",
      "computed on this device: the SM3 digest and its audit path lead to the SM3 batch root anchored on chain (GB/T 32905)");
  }
}

/** An intl statement: the account that recovers from it must be a member's. Returns [member, account]. */
async function accountStatement(run, p, root, trust) {
  const st = p.statement, when = beijingTime(st.signedAt);
  if (!root) { noRoot(run); return [null, null]; }
  const sm3Root = trust.sm3Roots.get(hex(root));
  const message = statementBytes(p, root, sm3Root ? unhex(sm3Root) : null);
  const memo = hex(message) + hex(st.signature);
  if (!statementSigners.has(memo)) {
    const raw = recoverAddress(await sha256(message), st.signature);
    if (statementSigners.size >= 4096) statementSigners.clear();  // bounded: a batch needs one entry
    statementSigners.set(memo, raw ? checksumAddress(raw) : null);
  }
  const account = statementSigners.get(memo);
  if (!account) {
    run.add("signature", "INVALID", "批次声明的签名无效：无法恢复签名者", "bad signature on the batch statement: no signer recovers from it", "tampered");
    return [null, null];
  }
  const member = trust.accounts.get(account.toLowerCase());
  if (!member) {
    run.add("signature", "INVALID", `批次声明的签名恢复出账户 ${account}，不是联盟成员账户（截至区块 ${trust.asOf.block}）：声明被改动，或由非成员签署`,
      `the batch statement's signature recovers ${account}, which is not a consortium member account (as of block ${trust.asOf.block}): the statement was altered or signed by a non-member`, "unknown_issuer");
    return [null, account];
  }
  run.add("signature", "VALID", `由联盟成员 ${member.name} 的账户 ${account} 签署批次声明（${when}）`,
    `the batch statement is signed by ${member.name}'s account ${account} at ${when}`);
  return [member, account];
}

/** The audit path does not fit the batch's size, so it leads to no root: nothing for a statement to sign. */
function noRoot(run) {
  run.add("signature", "INVALID", "批次声明无法核验：默克尔证明与批次大小不符", "the batch statement cannot be checked: the audit path does not fit the batch size", "tampered");
}

function statementSigner(run, p, root, trust, g) {
  const st = p.statement, id = hex(st.keyId), when = beijingTime(st.signedAt);
  if (!root) { noRoot(run); return null; }
  const keys = (trust.sm2Keys && trust.sm2Keys.get(id)) || [];
  if (!keys.length) {
    run.add("signature", "INVALID", `批次声明的 SM2 密钥 ${id} 未在信任列表中登记（截至区块 ${trust.asOf.block}）`,
      `the batch statement's SM2 key ${id} is not registered in the trust list (as of block ${trust.asOf.block})`, "unknown_issuer");
    return null;
  }
  const sm3Root = trust.sm3Roots.get(hex(root));
  const message = statementBytes(p, root, sm3Root ? unhex(sm3Root) : null);
  const entry = keys.find((e) => {
    const memo = hex(e.key) + hex(message) + hex(st.signature);
    if (verifiedStatements.has(memo)) return true;
    if (!g.verifySm2(message, st.signature, e.key)) return false;
    if (verifiedStatements.size >= 4096) verifiedStatements.clear();  // bounded: a batch needs one entry
    verifiedStatements.add(memo);
    return true;
  });
  if (!entry) {
    run.add("signature", "INVALID", "批次声明的 SM2 签名无效（GB/T 32918.2）", "bad SM2 signature on the batch statement (GB/T 32918.2)", "tampered");
    return null;
  }
  const member = trust.members.get(entry.uscc);
  if (!member || !(entry.since <= st.signedAt && (entry.until === 0 || st.signedAt <= entry.until))) {
    run.add("signature", "INVALID", `签名时（${when}）该 SM2 密钥已不属于 ${entry.uscc}（密钥已轮换）`,
      `the SM2 key of ${entry.uscc} was not valid at ${when} when the statement says it was signed (rotated key)`, "unknown_issuer");
    return null;
  }
  run.add("signature", "VALID", `由联盟成员 ${member.name} 的 SM2 密钥 ${id} 签署批次声明（${when}）`,
    `the batch statement is signed by ${member.name}'s SM2 key ${id} at ${when}`);
  return member;
}

function signature(run, signer, trust) {
  if (!signer) {
    run.add("signature", "INVALID", "签名无效：无法恢复签名者", "bad signature: no signer recovers from it", "tampered");
    return null;
  }
  const member = trust.accounts.get(signer.toLowerCase());
  if (!member) {
    run.add("signature", "INVALID", `签名者 ${signer} 不是联盟成员账户（截至区块 ${trust.asOf.block}）`,
      `signed by ${signer}, which is not a consortium member account (as of block ${trust.asOf.block})`, "unknown_issuer");
    return null;
  }
  run.add("signature", "VALID", `由联盟成员 ${member.name} 的账户 ${signer} 签名`, `signed by ${member.name}'s account ${signer}`);
  return member;
}

function issuer(run, p, cid, member, batch, trust) {
  if (!member) {
    run.add("issuer", "SKIPPED", "签名者不是联盟成员，无法核验颁发机构", "the signer is no member: issuer not checked");
    return;
  }
  const claimed = cid ? cid[1] : null;
  const claimedName = p.disclosed.has(ISSUER_NAME) ? p.disclosed.get(ISSUER_NAME)[1] : null;
  const allowed = trust.typeIssuers.get(p.typeCode) || [];
  let problem = null;
  if (claimed !== member.uscc) problem = [`证照声称由 ${claimed} 颁发，实际由 ${member.name} 签名`, `claims issuer ${claimed} but was signed by ${member.uscc}`];
  else if (batch && batch[1] !== member.uscc) problem = [`批次由 ${batch[1]} 上链，与签名机构不符`, `the batch was anchored by ${batch[1]}, not the signer`];
  else if (claimedName !== null && claimedName !== member.name) problem = [`颁发机构名称“${claimedName}”与联盟登记名称“${member.name}”不符`, `issuer name ${claimedName} differs from the registered ${member.name}`];
  else if (!member.roles.includes("issuer") || !allowed.includes(member.uscc)) problem = [`${member.name} 无权颁发此类证照`, `${member.name} may not issue type ${p.typeCode}`];
  if (problem) { run.add("issuer", "INVALID", problem[0], problem[1], "unknown_issuer"); return; }
  run.add("issuer", "VALID", `${member.name}（${member.bid}）为具备颁证权限的联盟成员`, `${member.name} (${member.bid}) is a consortium member allowed to issue this type`);
}

function status(run, digest, trust, meta) {
  const state = trust.documents.get(hex(digest));
  const asOf = `截至区块 ${trust.asOf.block}（${beijingTime(trust.asOf.time)}）`;
  const asOfEn = `as of block ${trust.asOf.block} (${beijingTime(trust.asOf.time)})`;
  if (!state) { run.add("status", "VALID", `未被撤销或暂停（${asOf}）`, `not revoked or suspended (${asOfEn})`); return; }
  if (state.status === "revoked") {
    const [zh, en] = meta.revocation_reasons[String(state.reason)] || ["其他", "other"];
    run.add("status", "INVALID", `已于区块 ${state.block} 撤销，原因：${zh}（${asOf}）`, `revoked in block ${state.block}: ${en} (${asOfEn})`,
      "revoked", { reason: state.reason, block: state.block });
  } else if (state.status === "suspended") {
    run.add("status", "INVALID", `已于区块 ${state.block} 暂停（${asOf}）`, `suspended in block ${state.block} (${asOfEn})`, "suspended", { block: state.block });
  } else {
    run.add("status", "INVALID", `已于区块 ${state.block} 被更正证照替代（${asOf}）`, `superseded in block ${state.block} (${asOfEn})`, "superseded", { block: state.block });
  }
}

function validity(run, p) {
  const date = (name) => {
    const v = p.disclosed.has(name) ? p.disclosed.get(name)[1] : null;
    return typeof v === "string" && /^\d{4}-\d{2}-\d{2}$/.test(v) ? v : null;
  };
  const start = date(FROM), until = date(UNTIL), today = beijingDate();
  if (p.hidden.has(FROM) || p.hidden.has(UNTIL)) run.add("validity", "SKIPPED", "有效期字段未披露", "the validity dates are hidden");
  else if (start && today < start) run.add("validity", "INVALID", `尚未生效（${start} 起）`, `not valid before ${start}`, "not_yet_valid");
  else if (until && today > until) run.add("validity", "INVALID", `已于 ${until} 过期`, `expired on ${until}`, "expired");
  else if (until) run.add("validity", "VALID", `有效期至 ${until}`, `valid until ${until}`);
  else run.add("validity", "VALID", "长期有效", "no expiry date");
}
