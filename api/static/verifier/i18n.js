/*
 * Wording of the verifier page in Chinese and English, the verdicts the page shows (each with its colour and
 * what it means), and Beijing time. Field labels in English come from /verifier/meta.json (the certificate
 * types' English field names in seeds/).
 */

/*
 * The page's verdicts. ``colour`` is one of four families (CSS .verdict-<colour>), each at WCAG AA contrast:
 *   green -- every check passed: content, anchoring, issuer, status and validity;
 *   amber -- genuine but not good today (suspended, not yet valid, expired), or only partly checked;
 *   red   -- do not accept it (revoked, superseded, tampered, unknown issuer, not anchored);
 *   grey  -- nothing to judge: the input is incomplete or unknown (fix the input, no retry helps).
 * ``summary`` says what was and was not checked; ``advice`` what to do.
 */
export const VERDICTS = {
  valid: { colour: "green", icon: "✓", zh: "有效", en: "Valid",
    summary: ["证照内容、上链记录、颁发机构、状态和有效期均已核验", "Content, anchoring, issuer, status and validity were all checked"] },
  status_only: { colour: "amber", icon: "!", zh: "仅核验状态", en: "Status only — the content was not checked",
    summary: ["链接缺少解密密钥（# 之后的部分）：已核验该标识的上链记录、颁发机构、状态和有效期，未核验证照内容。纸面或屏幕上的内容可能是伪造的。",
      "The link has no key after '#': the identifier's anchoring, issuer, status and validity were checked, the content was not. What the paper or screen shows may be forged."],
    advice: ["请扫描证照上的原始二维码以核验内容。", "Scan the original QR code on the certificate to check its content."] },
  wrong_key: { colour: "grey", icon: "?", zh: "链接不完整或密钥错误", en: "Incomplete link or wrong key",
    summary: ["链接中的密钥无法解密这份证照：链接可能被截断或抄错。这并不表示证照被篡改。",
      "The key in the link does not decrypt this certificate: the link may be cut short or mistyped. This does not mean the certificate was tampered with."],
    advice: ["请直接扫描证照上的二维码，或向持证人索取完整链接。", "Scan the QR code on the certificate itself, or ask the holder for the complete link."] },
  truncated_link: { colour: "grey", icon: "?", zh: "链接不完整或密钥错误", en: "Incomplete link or wrong key",
    summary: ["链接被截断：# 之后的密钥应为 43 个字符。", "The link is cut short: the key after '#' must be 43 characters."],
    advice: ["请复制完整链接，或直接扫描证照上的二维码。", "Copy the whole link, or scan the QR code on the certificate."] },
  revoked: { colour: "red", icon: "✗", zh: "已撤销", en: "Revoked",
    summary: ["颁发机构已撤销这份证照，不应再接受。", "The issuer revoked this certificate: do not accept it."] },
  suspended: { colour: "amber", icon: "!", zh: "已暂停", en: "Suspended",
    summary: ["颁发机构已暂停这份证照，暂停期间不应接受。", "The issuer suspended this certificate: do not accept it while suspended."] },
  superseded: { colour: "red", icon: "✗", zh: "已被更正证照替代", en: "Superseded",
    summary: ["这份证照已被更正后的新证照替代，请核验新证照。", "A corrected certificate replaced this one: verify the new one."] },
  not_yet_valid: { colour: "amber", icon: "!", zh: "尚未生效", en: "Not yet valid",
    summary: ["证照真实，但有效期尚未开始。", "The certificate is genuine, but its validity period has not started."] },
  expired: { colour: "amber", icon: "!", zh: "已过期", en: "Expired",
    summary: ["证照真实，但已超过有效期。", "The certificate is genuine, but its validity period has ended."] },
  unknown: { colour: "grey", icon: "?", zh: "查无此证照", en: "No such certificate",
    summary: ["没有以此标识登记的证照。", "No certificate is registered under this identifier."],
    advice: ["请核对链接是否完整，或联系颁发机构。这不是网络问题，重试不会改变结果。",
      "Check that the link is complete, or contact the issuer. This is not a network problem: retrying will not change it."] },
  malformed: { colour: "grey", icon: "?", zh: "无法识别的证照标识", en: "Not a valid certificate identifier",
    summary: ["链接中的证照标识格式不正确，可能被截断或改动。", "The identifier in the link is malformed: it may be cut short or altered."],
    advice: ["请直接扫描证照上的二维码。重试不会改变结果。", "Scan the QR code on the certificate itself. Retrying will not change it."] },
  unreadable: { colour: "grey", icon: "?", zh: "离线码无法读取", en: "The offline code cannot be read",
    summary: ["二维码数据不完整或已损坏。", "The QR data is incomplete or damaged."],
    advice: ["请让二维码充满取景框，避免反光，保持稳定后重新扫描。", "Fill the frame with the code, avoid glare and hold steady, then scan again."] },
  tampered: { colour: "red", icon: "✗", zh: "内容被篡改", en: "Tampered",
    summary: ["证照内容与登记的摘要不符，不应接受。", "The content does not match the registered digest: do not accept it."] },
  unknown_issuer: { colour: "red", icon: "✗", zh: "颁发机构未知", en: "Unknown issuer",
    summary: ["颁发机构不是有权颁发此类证照的联盟成员。", "The issuer is not a consortium member allowed to issue this type."] },
  not_anchored: { colour: "red", icon: "✗", zh: "未上链", en: "Not anchored",
    summary: ["链上没有这份证照的记录。", "The chain has no record of this certificate."] },
  cannot_verify: { colour: "amber", icon: "!", zh: "暂时无法验证", en: "Cannot verify now",
    summary: ["核验服务或区块链节点暂时不可达，未得出结论。", "The verification service or chain node is unreachable: no conclusion was reached."],
    advice: ["请检查网络后重试。", "Check the network connection and try again."] },
};

export const CHECKS = {
  decrypt: ["解密", "Decryption"], integrity: ["内容完整性", "Content integrity"], sm3: ["SM3 摘要", "SM3 digest"],
  signature: ["签名", "Signature"], anchoring: ["上链", "Anchoring"], issuer: ["颁发机构", "Issuer"],
  status: ["状态", "Status"], validity: ["有效期", "Validity"], seal: ["电子印章", "E-seal"], source: ["来源", "Source"],
  presentation: ["出示方式", "Presented by"],
};

/*
 * The e-seal card (render.js): the mark when the `seal` check passed, and each failure the server names in
 * details.problem (registry/seals/verification.py) in words, Chinese first; ``d`` is the check's details.
 */
export const SEAL = {
  valid: ["印章有效", "Seal verified"],
  invalid: ["印章未通过核验", "Seal not verified"],
  skipped: ["暂时无法验章", "The seal cannot be checked now"],
  later: (d) => d.later === "revoked"
    ? [`盖章时印章有效；该印章其后（区块 ${d.later_block}）已撤销，此前所盖印章仍然有效`, `The seal was valid when sealed; it was revoked later (block ${d.later_block}): what it sealed before stays valid`]
    : [`盖章时印章有效；该印章其后（区块 ${d.later_block}）已暂停，此前所盖印章仍然有效`, `The seal was valid when sealed; it was suspended later (block ${d.later_block}): what it sealed before stays valid`],
  tampered: ["证照的电子印章未通过核验，不应接受。", "The certificate's e-seal failed verification: do not accept it."],
  served_mismatch: ["取得的印章图像与链上登记的摘要不符，未予显示", "The seal image received does not match the digest registered on chain: not shown"],
  unavailable: ["未能取得或核对印章图像", "The seal image could not be fetched or checked"],
  problems: {
    image_mismatch: (d) => d.image_of_name
      ? [`印章图像与链上登记的不符：该图像是${d.image_of_name}另一枚印章的图像`, `The seal image is not the registered one: it is the image of another seal, of ${d.image_of_name}`]
      : ["印章图像与链上登记的不符（图像被替换或篡改）", "The seal image does not match the one registered on chain (replaced or altered)"],
    foreign_seal: (d) => [`这是${d.seal_agency_name || "另一机构"}的印章，不是颁发机构的印章`, `This is a seal of ${d.seal_agency_name || "another agency"}, not of the issuer`],
    suspended_at_sealing: () => ["盖章时该印章已被暂停", "The seal was suspended when the document was sealed"],
    revoked_at_sealing: () => ["盖章时该印章已被撤销", "The seal was revoked when the document was sealed"],
    not_active_at_sealing: () => ["盖章时该印章尚未在链上生效", "The seal was not yet registered on chain when the document was sealed"],
    outside_validity: () => ["盖章时印章不在有效期内", "The seal was outside its validity period when the document was sealed"],
    bad_signature: () => ["签章签名无效", "The sealed signature does not verify"],
    key_mismatch: () => ["签章密钥不是该印章登记的密钥", "The signing key is not the seal's registered key"],
    maker_unknown: () => ["制章方的密钥未在链上公布", "The seal maker's key was never published on chain"],
    info_mismatch: () => ["印章信息与链上登记的不符", "The seal's information differs from the registered one"],
    not_registered: () => ["该印章未在链上登记", "The seal is not registered on chain"],
    wrong_document: () => ["这不是对本证照的签章", "The sealed signature is not over this certificate"],
    unreadable: () => ["电子签章无法读取", "The sealed signature cannot be read"],
  },
};
export const STATUS = { VALID: ["通过", "Passed"], INVALID: ["未通过", "Failed"], SKIPPED: ["未核验", "Not checked"] };
export const NOT_OURS = ["这不是链证电子证照二维码", "Not a Lianzheng certificate QR code"];
export const NO_QR_FOUND = ["图片中未找到二维码", "No QR code found in the image"];
export const PHOTO_ADVICE = [
  "请让二维码充满画面、避免反光和阴影、保持手机稳定并对焦清晰后重拍；离线码较密，请靠近拍摄。",
  "Fill the frame with the code, avoid glare and shadows, hold the phone steady and in focus, then take another photo; offline codes are dense, so come closer.",
];

// ---- Beijing time (UTC+8, no daylight saving) ---------------------------------------------------------
const pad = (n) => String(n).padStart(2, "0");
function shifted(when) {
  const ms = typeof when === "number" ? when * 1000 : Date.parse(when);
  return Number.isNaN(ms) ? null : new Date(ms + 8 * 3600 * 1000);
}
/** "2026-12-02 04:35:10 (UTC+8)" from unix seconds or an ISO string; the input unchanged when unparsable. */
export function beijingTime(when) {
  const d = shifted(when);
  if (!d) return String(when);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} (UTC+8)`;
}
/** Today's date in Beijing, yyyy-mm-dd. */
export function beijingDate(now = Date.now() / 1000) {
  return beijingTime(now).slice(0, 10);
}
/** Replace every ISO-8601 UTC time ("...Z") in a server message by Beijing time. */
export const localiseTimes = (text) =>
  String(text).replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z/g, (iso) => beijingTime(iso));

/** A server error message is often "中文 / English": split it, else show it as is in both languages. */
export function splitMessage(message) {
  const text = String(message || "");
  const at = text.indexOf(" / ");
  if (at > 0 && /[\u4e00-\u9fff]/.test(text.slice(0, at))) return [text.slice(0, at), text.slice(at + 3)];
  return [text, text];
}
