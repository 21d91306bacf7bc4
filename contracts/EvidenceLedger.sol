// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsortiumRegistry, ROLE_EVIDENCE, STATUS_ACTIVE} from "./IConsortiumRegistry.sol";

/**
 * @title EvidenceLedger
 * @notice The evidence custody chain (存证公正链, 区块链+法治): law-enforcement agencies, courts and notaries
 * register evidence digests under a case, hand custody from agency to agency (request, then accept or
 * reject by the recipient) and seal the case, after which it is frozen. Append-only: a correction is a new
 * record that links to the one it supersedes; nothing is overwritten.
 * @dev Acting on custody (register, transfer, accept, sealCase) needs an account of an Active member with
 * EVIDENCE_ROLE; declining a transfer (reject) only needs an account of the recipient member, so a
 * recipient that lost the role can still release the record.
 */
contract EvidenceLedger {
    error EvidenceLedgerUnauthorized(address account, uint64 role);
    error EvidenceLedgerRecordExists(bytes32 id);
    error EvidenceLedgerUnknownRecord(bytes32 id);
    error EvidenceLedgerCaseSealed(bytes32 caseId);
    error EvidenceLedgerNotCustodian(bytes32 id, address account);
    error EvidenceLedgerNotRecipient(bytes32 id, address account);
    error EvidenceLedgerNoPendingTransfer(bytes32 id);
    error EvidenceLedgerTransferPending(bytes32 id);
    error EvidenceLedgerNotCaseOwner(bytes32 caseId, address account);
    error EvidenceLedgerInvalidRecipient(bytes32 uscc);
    error EvidenceLedgerInvalidSupersede(bytes32 id, bytes32 supersedes);

    event EvidenceRegistered(
        bytes32 indexed id,
        bytes32 indexed caseId,
        bytes32 indexed collectorUscc,
        bytes32 sha256Digest,
        bytes32 sm3Digest,
        uint64 size,
        bytes32 metaDigest,
        bytes32 supersedes
    );
    event CustodyTransferRequested(
        bytes32 indexed id, bytes32 indexed fromUscc, bytes32 indexed toUscc, bytes32 purposeDigest, bool digestRechecked
    );
    event CustodyTransferAccepted(
        bytes32 indexed id, bytes32 indexed fromUscc, bytes32 indexed toUscc, bool digestRechecked
    );
    event CustodyTransferRejected(bytes32 indexed id, bytes32 indexed fromUscc, bytes32 indexed toUscc);
    event CaseSealed(bytes32 indexed caseId, bytes32 indexed ownerUscc, uint32 records);

    struct Record {
        bytes32 caseId;
        bytes32 sha256Digest;
        bytes32 sm3Digest;
        bytes32 metaDigest;
        bytes32 collectorUscc;
        bytes32 custodianUscc;
        bytes32 pendingTo;
        bytes32 supersedes;
        bytes32 supersededBy;
        // one slot; registeredBlock != 0 marks an existing record
        uint64 size;
        uint64 registeredBlock;
        uint64 timestamp;
    }

    struct Case {
        bytes32 ownerUscc; // 0 until the case's first record
        // one slot
        bool isSealed;
        uint64 sealedBlock;
        uint32 records;
    }

    IConsortiumRegistry private immutable _consortium;
    mapping(bytes32 id => Record) private _records;
    mapping(bytes32 caseId => Case) private _cases;

    /// @param consortium_ the ConsortiumRegistry consulted for members and roles.
    constructor(address consortium_) {
        _consortium = IConsortiumRegistry(consortium_);
    }

    /**
     * @notice Registers an evidence record in case `caseId`; the caller's member becomes its collector and
     * custodian, and the owner of the case if this is the case's first record.
     * @dev Requirements: EVIDENCE_ROLE; `id` new and not 0; case not sealed; `supersedes` is 0 or an existing record of
     * the same case not yet superseded (it is then linked with supersededBy = `id`). Emits {EvidenceRegistered}.
     */
    function register(
        bytes32 id,
        bytes32 caseId,
        bytes32 sha256Digest,
        bytes32 sm3Digest,
        uint64 size,
        bytes32 metaDigest,
        bytes32 supersedes
    ) external {
        bytes32 uscc = _requireEvidenceMember();
        Record storage r = _records[id];
        // id 0 is reserved: it means "none" in `supersedes` and `supersededBy`
        if (id == 0 || r.registeredBlock != 0) revert EvidenceLedgerRecordExists(id);
        Case storage c = _cases[caseId];
        if (c.isSealed) revert EvidenceLedgerCaseSealed(caseId);
        if (supersedes != 0) _linkSuperseded(id, caseId, supersedes);
        if (c.ownerUscc == 0) c.ownerUscc = uscc;
        ++c.records;
        r.caseId = caseId;
        r.sha256Digest = sha256Digest;
        r.sm3Digest = sm3Digest;
        r.metaDigest = metaDigest;
        r.collectorUscc = uscc;
        r.custodianUscc = uscc;
        r.supersedes = supersedes;
        r.size = size;
        r.registeredBlock = uint64(block.number);
        r.timestamp = uint64(block.timestamp);
        emit EvidenceRegistered(id, caseId, uscc, sha256Digest, sm3Digest, size, metaDigest, supersedes);
    }

    /**
     * @notice Asks member `toUscc` to take custody of record `id`.
     * @dev Requirements: EVIDENCE_ROLE; the caller's member is the custodian; case not sealed; no transfer
     * pending; `toUscc` is an Active member with EVIDENCE_ROLE other than the custodian.
     * Emits {CustodyTransferRequested}.
     */
    function transfer(bytes32 id, bytes32 toUscc, bytes32 purposeDigest, bool digestRechecked) external {
        bytes32 uscc = _requireEvidenceMember();
        Record storage r = _existing(id);
        if (r.custodianUscc != uscc) revert EvidenceLedgerNotCustodian(id, msg.sender);
        _requireOpen(r.caseId);
        if (r.pendingTo != 0) revert EvidenceLedgerTransferPending(id);
        if (toUscc == uscc || !_isActiveEvidenceMember(toUscc)) revert EvidenceLedgerInvalidRecipient(toUscc);
        r.pendingTo = toUscc;
        emit CustodyTransferRequested(id, uscc, toUscc, purposeDigest, digestRechecked);
    }

    /**
     * @notice Accepts custody of record `id`; the caller's member becomes its custodian.
     * @dev Requirements: EVIDENCE_ROLE; a transfer is pending to the caller's member; case not sealed.
     * Emits {CustodyTransferAccepted}.
     */
    function accept(bytes32 id, bool digestRechecked) external {
        bytes32 uscc = _requireEvidenceMember();
        Record storage r = _existing(id);
        bytes32 to = r.pendingTo;
        if (to == 0) revert EvidenceLedgerNoPendingTransfer(id);
        if (to != uscc) revert EvidenceLedgerNotRecipient(id, msg.sender);
        _requireOpen(r.caseId);
        bytes32 from = r.custodianUscc;
        r.custodianUscc = to;
        r.pendingTo = 0;
        emit CustodyTransferAccepted(id, from, to, digestRechecked);
    }

    /**
     * @notice Declines the transfer of record `id` pending to the caller's member; custody is unchanged.
     * @dev Requirements: a transfer is pending to the caller's member (allowed in a sealed case, to release
     * it). Emits {CustodyTransferRejected}.
     */
    function reject(bytes32 id) external {
        Record storage r = _existing(id);
        bytes32 to = r.pendingTo;
        if (to == 0) revert EvidenceLedgerNoPendingTransfer(id);
        if (_consortium.memberOf(msg.sender) != to) revert EvidenceLedgerNotRecipient(id, msg.sender);
        r.pendingTo = 0;
        emit CustodyTransferRejected(id, r.custodianUscc, to);
    }

    /**
     * @notice Seals case `caseId`: no further register, transfer or accept in it.
     * @dev Requirements: EVIDENCE_ROLE; the caller's member owns the case; not yet sealed. Emits {CaseSealed}.
     */
    function sealCase(bytes32 caseId) external {
        bytes32 uscc = _requireEvidenceMember();
        Case storage c = _cases[caseId];
        if (c.ownerUscc != uscc) revert EvidenceLedgerNotCaseOwner(caseId, msg.sender);
        if (c.isSealed) revert EvidenceLedgerCaseSealed(caseId);
        c.isSealed = true;
        c.sealedBlock = uint64(block.number);
        emit CaseSealed(caseId, uscc, c.records);
    }

    /// @notice An evidence record; all zero if unknown.
    function getRecord(bytes32 id)
        external
        view
        returns (
            bytes32 caseId,
            bytes32 sha256Digest,
            bytes32 sm3Digest,
            uint64 size,
            bytes32 metaDigest,
            bytes32 collectorUscc,
            bytes32 custodianUscc,
            bytes32 pendingTo,
            bytes32 supersedes,
            bytes32 supersededBy,
            uint64 registeredBlock,
            uint64 timestamp
        )
    {
        Record memory r = _records[id];
        return (
            r.caseId,
            r.sha256Digest,
            r.sm3Digest,
            r.size,
            r.metaDigest,
            r.collectorUscc,
            r.custodianUscc,
            r.pendingTo,
            r.supersedes,
            r.supersededBy,
            r.registeredBlock,
            r.timestamp
        );
    }

    /// @notice A case: its owner member, whether and when it was sealed, and its number of records.
    function getCase(bytes32 caseId)
        external
        view
        returns (bytes32 ownerUscc, bool isSealed, uint64 sealedBlock, uint32 records)
    {
        Case storage c = _cases[caseId];
        return (c.ownerUscc, c.isSealed, c.sealedBlock, c.records);
    }

    /// @notice The ConsortiumRegistry this ledger consults.
    function consortium() external view returns (address) {
        return address(_consortium);
    }

    // ---------------------------------------------------------------- internals

    function _requireEvidenceMember() private view returns (bytes32) {
        if (!_consortium.hasRole(msg.sender, ROLE_EVIDENCE)) {
            revert EvidenceLedgerUnauthorized(msg.sender, ROLE_EVIDENCE);
        }
        return _consortium.memberOf(msg.sender);
    }

    function _existing(bytes32 id) private view returns (Record storage r) {
        r = _records[id];
        if (r.registeredBlock == 0) revert EvidenceLedgerUnknownRecord(id);
    }

    function _requireOpen(bytes32 caseId) private view {
        if (_cases[caseId].isSealed) revert EvidenceLedgerCaseSealed(caseId);
    }

    function _isActiveEvidenceMember(bytes32 uscc) private view returns (bool) {
        (,, uint64 roles, uint8 status,,) = _consortium.getMember(uscc);
        return status == STATUS_ACTIVE && roles & ROLE_EVIDENCE != 0;
    }

    function _linkSuperseded(bytes32 id, bytes32 caseId, bytes32 supersedes) private {
        Record storage old = _records[supersedes];
        if (old.registeredBlock == 0 || old.caseId != caseId || old.supersededBy != 0) {
            revert EvidenceLedgerInvalidSupersede(id, supersedes);
        }
        old.supersededBy = id;
    }
}
