// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsortiumRegistry, ROLE_ISSUER} from "./IConsortiumRegistry.sol";
import {MerkleProof6962} from "./MerkleProof6962.sol";

/**
 * @title CertificateLedger
 * @notice The trusted e-certificate chain (可信电子证照链): an issuing agency anchors the RFC 6962 Merkle roots of
 * a batch of document digests in one transaction: the SHA-256 root (the batch's key, used by the inclusion proofs
 * below) and, beside it, the SM3 root of the same batch (GB/T 32905; leaves are the documents' SM3 digests) for
 * 商用密码 verifiers; afterwards the issuer (or a revoker it delegated in the
 * consortium) can suspend, reinstate, revoke or supersede any single document of the batch by proving
 * its inclusion. Only hashes are stored, never personal data.
 * @dev Gas: a batch costs TWO new storage slots (issuer index, count, block number, timestamp; the SM3 root).
 * The issuing (account, USCC) pair is stored once in an issuer table the batch slot points into, so the
 * steady-state anchor is ~78k gas whatever the batch size (the SM3 root's slot is ~22k of it: +22 gas per
 * document at 1,000, measured in tests/unit/contracts/test_certificate_ledger.py). Documents have no storage until their status changes:
 * an unknown document reads as status Issued with root 0.
 */
contract CertificateLedger {
    uint8 private constant _ISSUED = 0;
    uint8 private constant _SUSPENDED = 1;
    uint8 private constant _REVOKED = 2;
    uint8 private constant _SUPERSEDED = 3;

    error CertificateLedgerUnauthorized(address account, bytes32 issuerUscc);
    error CertificateLedgerNotIssuer(address account);
    error CertificateLedgerRootExists(bytes32 root);
    error CertificateLedgerUnknownRoot(bytes32 root);
    error CertificateLedgerInvalidBatch(uint32 count);
    error CertificateLedgerMissingSm3Root(bytes32 root);
    error CertificateLedgerInvalidProof(bytes32 doc, bytes32 root);
    error CertificateLedgerUnknownDocument(bytes32 doc);
    error CertificateLedgerInvalidTransition(bytes32 doc, uint8 from, uint8 to);
    error CertificateLedgerInvalidReason(uint8 reason);

    event BatchAnchored(
        bytes32 indexed root, bytes32 indexed issuerUscc, address indexed issuer, bytes32 sm3Root, uint32 count
    );
    event DocumentSuspended(bytes32 indexed doc, bytes32 indexed root, address by);
    event DocumentReinstated(bytes32 indexed doc, bytes32 indexed root, address by);
    event DocumentRevoked(bytes32 indexed doc, bytes32 indexed root, uint8 reason, address by);
    event DocumentSuperseded(bytes32 indexed oldDoc, bytes32 indexed newDoc, bytes32 root, address by);

    /// Two storage slots per batch: the packed record, then the SM3 root.
    struct Batch {
        uint32 issuerIndex; // into _issuers, from 1
        uint32 count; // > 0 for every anchored batch: the existence marker
        uint64 blockNumber;
        uint64 timestamp;
        bytes32 sm3Root; // RFC 6962 root of the same batch over SM3 (leaf = SM3(0x00 || document SM3 digest))
    }

    struct Issuer {
        address account;
        bytes32 uscc;
    }

    struct DocState {
        uint8 status;
        uint8 reason;
        uint64 sinceBlock;
        bytes32 root;
        bytes32 supersededBy;
    }

    IConsortiumRegistry private immutable _consortium;
    mapping(bytes32 root => Batch) private _batches;
    mapping(uint32 index => Issuer) private _issuers;
    mapping(bytes32 accountAndUscc => uint32 index) private _issuerIndex;
    uint32 private _issuerCount;
    mapping(bytes32 doc => DocState) private _docs;

    /// @param consortium_ the ConsortiumRegistry consulted for roles and revocation rights.
    constructor(address consortium_) {
        _consortium = IConsortiumRegistry(consortium_);
    }

    /**
     * @notice Anchors the RFC 6962 roots of a batch of `count` documents, issued by the caller's member:
     * `root` over their SHA-256 digests and `sm3Root` over their SM3 digests, in the same leaf order.
     * @dev Requirements: the caller holds ISSUER_ROLE in an Active member; `count` > 0; `sm3Root` != 0;
     * `root` never anchored before. The contract cannot recompute SM3 (no precompile): it records the SM3
     * root for verifiers, who recompute both. Emits {BatchAnchored}.
     */
    function anchorBatch(bytes32 root, bytes32 sm3Root, uint32 count) external {
        IConsortiumRegistry consortium_ = _consortium;
        if (!consortium_.hasRole(msg.sender, ROLE_ISSUER)) revert CertificateLedgerNotIssuer(msg.sender);
        if (count == 0) revert CertificateLedgerInvalidBatch(count);
        if (sm3Root == 0) revert CertificateLedgerMissingSm3Root(root);
        Batch storage b = _batches[root];
        if (b.count != 0) revert CertificateLedgerRootExists(root);
        bytes32 uscc = consortium_.memberOf(msg.sender);
        b.issuerIndex = _issuerIndexFor(msg.sender, uscc);
        b.count = count;
        b.blockNumber = uint64(block.number);
        b.timestamp = uint64(block.timestamp);
        b.sm3Root = sm3Root;
        emit BatchAnchored(root, uscc, msg.sender, sm3Root, count);
    }

    /**
     * @notice Suspends document `doc` of batch `root` (reversible).
     * @dev Requirements: `root` anchored; `consortium.canRevokeFor(caller, issuer)`; `doc` at `index` of the
     * batch per `proof` (unless already recorded under `root`) and not recorded under another root;
     * status Issued. Emits {DocumentSuspended}.
     */
    function suspend(bytes32 doc, bytes32 root, uint256 index, bytes32[] calldata proof) external {
        (, DocState storage s) = _authoriseDocument(doc, root, index, proof);
        if (s.status != _ISSUED) revert CertificateLedgerInvalidTransition(doc, s.status, _SUSPENDED);
        s.status = _SUSPENDED;
        s.sinceBlock = uint64(block.number);
        s.root = root;
        emit DocumentSuspended(doc, root, msg.sender);
    }

    /**
     * @notice Reinstates a suspended document (its root is the one recorded when it was suspended).
     * @dev Requirements: `doc` recorded; `consortium.canRevokeFor(caller, issuer)`; status Suspended.
     * Emits {DocumentReinstated}.
     */
    function reinstate(bytes32 doc) external {
        DocState storage s = _docs[doc];
        bytes32 root = s.root;
        if (root == 0) revert CertificateLedgerUnknownDocument(doc);
        _authoriseBatch(root);
        if (s.status != _SUSPENDED) revert CertificateLedgerInvalidTransition(doc, s.status, _ISSUED);
        s.status = _ISSUED;
        s.sinceBlock = uint64(block.number);
        emit DocumentReinstated(doc, root, msg.sender);
    }

    /**
     * @notice Revokes document `doc` of batch `root` for good, with a reason code 1..255.
     * @dev Requirements: as {suspend}, plus `reason` != 0; status Issued or Suspended.
     * Emits {DocumentRevoked}.
     */
    function revoke(bytes32 doc, bytes32 root, uint256 index, bytes32[] calldata proof, uint8 reason) external {
        if (reason == 0) revert CertificateLedgerInvalidReason(reason);
        (, DocState storage s) = _authoriseDocument(doc, root, index, proof);
        uint8 from = s.status;
        if (from != _ISSUED && from != _SUSPENDED) revert CertificateLedgerInvalidTransition(doc, from, _REVOKED);
        s.status = _REVOKED;
        s.reason = reason;
        s.sinceBlock = uint64(block.number);
        s.root = root;
        emit DocumentRevoked(doc, root, reason, msg.sender);
    }

    /**
     * @notice Marks `oldDoc` (batch `root`) as superseded by the corrected reissue `newDoc` (batch `newRoot`).
     * @dev Requirements: as {suspend} for `oldDoc`; status Issued or Suspended; `newDoc` != `oldDoc`;
     * `newRoot` anchored by the same issuer USCC (else CertificateLedgerUnauthorized with the new batch's
     * issuer); `newDoc` included in `newRoot` and not recorded under another root. Only `oldDoc`'s record
     * changes. Emits {DocumentSuperseded}.
     */
    function supersede(
        bytes32 oldDoc,
        bytes32 root,
        uint256 index,
        bytes32[] calldata proof,
        bytes32 newDoc,
        bytes32 newRoot,
        uint256 newIndex,
        bytes32[] calldata newProof
    ) external {
        (bytes32 uscc, DocState storage s) = _authoriseDocument(oldDoc, root, index, proof);
        uint8 from = s.status;
        if ((from != _ISSUED && from != _SUSPENDED) || newDoc == oldDoc) {
            revert CertificateLedgerInvalidTransition(oldDoc, from, _SUPERSEDED);
        }
        _checkReplacement(uscc, newDoc, newRoot, newIndex, newProof);
        s.status = _SUPERSEDED;
        s.sinceBlock = uint64(block.number);
        s.root = root;
        s.supersededBy = newDoc;
        emit DocumentSuperseded(oldDoc, newDoc, root, msg.sender);
    }

    /// @notice The batch anchored under `root` (with its SM3 root); all zero if unknown.
    function getBatch(bytes32 root)
        external
        view
        returns (
            address issuer,
            bytes32 issuerUscc,
            uint32 count,
            uint64 blockNumber,
            uint64 timestamp,
            bytes32 sm3Root
        )
    {
        Batch storage b = _batches[root];
        Issuer storage i = _issuers[b.issuerIndex];
        return (i.account, i.uscc, b.count, b.blockNumber, b.timestamp, b.sm3Root);
    }

    /**
     * @notice A document's recorded status: 0 Issued, 1 Suspended, 2 Revoked, 3 Superseded. A document
     * never suspended/revoked/superseded reads (0, 0, 0, 0, 0): check its inclusion and batch instead.
     */
    function documentState(bytes32 doc)
        external
        view
        returns (uint8 status, uint8 reason, uint64 sinceBlock, bytes32 root, bytes32 supersededBy)
    {
        DocState storage s = _docs[doc];
        return (s.status, s.reason, s.sinceBlock, s.root, s.supersededBy);
    }

    /// @notice RFC 9162 §2.1.3.2 inclusion check of document digest `doc` at `index` in a tree of `size`.
    function verifyInclusion(bytes32 doc, uint256 index, uint256 size, bytes32[] calldata proof, bytes32 root)
        external
        pure
        returns (bool)
    {
        return MerkleProof6962.verify(doc, index, size, proof, root);
    }

    /// @notice The ConsortiumRegistry this ledger consults.
    function consortium() external view returns (address) {
        return address(_consortium);
    }

    // ---------------------------------------------------------------- internals

    /// Index of the (account, USCC) pair in the issuer table, adding it on its first anchor.
    function _issuerIndexFor(address account, bytes32 uscc) private returns (uint32 index) {
        bytes32 key = keccak256(abi.encode(account, uscc));
        index = _issuerIndex[key];
        if (index == 0) {
            index = ++_issuerCount;
            _issuers[index] = Issuer(account, uscc);
            _issuerIndex[key] = index;
        }
    }

    /// The batch's issuer USCC and count, after checking the caller may act on its documents.
    function _authoriseBatch(bytes32 root) private view returns (bytes32 uscc, uint32 count) {
        Batch storage b = _batches[root];
        count = b.count;
        if (count == 0) revert CertificateLedgerUnknownRoot(root);
        uscc = _issuers[b.issuerIndex].uscc;
        if (!_consortium.canRevokeFor(msg.sender, uscc)) revert CertificateLedgerUnauthorized(msg.sender, uscc);
    }

    function _authoriseDocument(bytes32 doc, bytes32 root, uint256 index, bytes32[] calldata proof)
        private
        view
        returns (bytes32 uscc, DocState storage s)
    {
        uint32 count;
        (uscc, count) = _authoriseBatch(root);
        s = _included(doc, root, index, proof, count);
    }

    /// The document's record, once `doc` is shown to belong to `root` (a recorded root needs no new proof).
    function _included(bytes32 doc, bytes32 root, uint256 index, bytes32[] calldata proof, uint32 count)
        private
        view
        returns (DocState storage s)
    {
        s = _docs[doc];
        bytes32 known = s.root;
        if (known == 0) {
            if (!MerkleProof6962.verify(doc, index, count, proof, root)) {
                revert CertificateLedgerInvalidProof(doc, root);
            }
        } else if (known != root) {
            revert CertificateLedgerInvalidProof(doc, root);
        }
    }

    function _checkReplacement(
        bytes32 uscc,
        bytes32 newDoc,
        bytes32 newRoot,
        uint256 newIndex,
        bytes32[] calldata newProof
    ) private view {
        Batch storage nb = _batches[newRoot];
        uint32 count = nb.count;
        if (count == 0) revert CertificateLedgerUnknownRoot(newRoot);
        bytes32 newUscc = _issuers[nb.issuerIndex].uscc;
        if (newUscc != uscc) revert CertificateLedgerUnauthorized(msg.sender, newUscc);
        _included(newDoc, newRoot, newIndex, newProof, count);
    }
}
