// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsortiumRegistry, STATUS_ACTIVE} from "./IConsortiumRegistry.sol";
import {IGrantRegistry} from "./GrantRegistry.sol";
import {GranteeDigest} from "./GranteeDigest.sol";

/**
 * @title UsageLedger
 * @notice Usage records (用证记录): an agency handling a matter records that it used a certificate, with the
 * holder's consent: either a grant (授权他人用证) anchored on the GrantRegistry naming the agency as grantee,
 * or the holder's in-person presentation (a signature over a verifier challenge, checked off chain by the
 * node and the audit; only its digest is recorded). The matter (申请事由) stays off chain: only its digest.
 * @dev With a grant the contract checks: the grant exists and is active (not revoked), notBefore <=
 * block.timestamp < expiresAt, it is a grant for `certificateDoc`, and its grantee digest is
 * SHA-256("lianzheng/grantee/agency/v1:" || the caller's member USCC as its 18 ASCII characters).
 * Without a grant a nonzero presentation digest is required. The caller is an account of an Active member.
 */
contract UsageLedger {
    uint8 private constant _GRANT_ACTIVE = 1;
    uint8 private constant _GRANT_REVOKED = 2;

    error UsageLedgerUnauthorized(address account);
    error UsageLedgerExists(bytes32 id);
    error UsageLedgerInvalidUsage(bytes32 id);
    error UsageLedgerNoConsent(bytes32 id);
    error UsageLedgerUnknownGrant(bytes32 grant);
    error UsageLedgerGrantRevoked(bytes32 grant);
    error UsageLedgerGrantNotYetValid(bytes32 grant, uint64 notBefore, uint64 time);
    error UsageLedgerGrantExpired(bytes32 grant, uint64 expiresAt, uint64 time);
    error UsageLedgerCertificateMismatch(bytes32 grant, bytes32 granted, bytes32 used);
    error UsageLedgerWrongGrantee(bytes32 grant, bytes32 agencyUscc);

    /// One usage; exactly one of grantDigest / presentationDigest is nonzero.
    event UsageRecorded(
        bytes32 indexed id,
        bytes32 indexed certificateDoc,
        bytes32 indexed agencyUscc,
        bytes32 grantDigest,
        bytes32 presentationDigest,
        bytes32 purposeDigest
    );

    struct Usage {
        bytes32 certificateDoc;
        bytes32 agencyUscc;
        bytes32 grantDigest;
        bytes32 presentationDigest;
        bytes32 purposeDigest;
        // one slot; recordedBlock != 0 marks an existing usage
        uint64 recordedBlock;
        uint64 timestamp;
    }

    IConsortiumRegistry private immutable _consortium;
    IGrantRegistry private immutable _grants;
    mapping(bytes32 id => Usage) private _usages;
    uint256 private _count;

    /// @param consortium_ the ConsortiumRegistry consulted for members.
    /// @param grants_ the GrantRegistry consulted for grants.
    constructor(address consortium_, address grants_) {
        _consortium = IConsortiumRegistry(consortium_);
        _grants = IGrantRegistry(grants_);
    }

    /**
     * @notice Records that the caller's agency used `certificateDoc` (the document digest) for the matter
     * whose salted digest is `purposeDigest`, under grant `grantDigest` or, with grantDigest = 0, after the
     * holder's in-person presentation `presentationDigest`.
     * @dev Requirements: the caller is an account of an Active member; `id` new and nonzero; certificateDoc
     * and purposeDigest nonzero; exactly one of grantDigest / presentationDigest nonzero; a grant must be
     * active, within its validity, for this certificate and for the caller's agency (see the contract notes).
     * Emits {UsageRecorded}.
     */
    function recordUsage(
        bytes32 id,
        bytes32 certificateDoc,
        bytes32 grantDigest,
        bytes32 presentationDigest,
        bytes32 purposeDigest
    ) external {
        bytes32 agency = _consortium.memberOf(msg.sender);
        if (agency == bytes32(0)) revert UsageLedgerUnauthorized(msg.sender);
        (,,, uint8 status,,) = _consortium.getMember(agency);
        if (status != STATUS_ACTIVE) revert UsageLedgerUnauthorized(msg.sender);
        if (id == bytes32(0) || certificateDoc == bytes32(0) || purposeDigest == bytes32(0)) {
            revert UsageLedgerInvalidUsage(id);
        }
        if (_usages[id].recordedBlock != 0) revert UsageLedgerExists(id);
        if ((grantDigest == bytes32(0)) == (presentationDigest == bytes32(0))) revert UsageLedgerNoConsent(id);
        if (grantDigest != bytes32(0)) _checkGrant(grantDigest, certificateDoc, agency);
        _usages[id] = Usage(
            certificateDoc,
            agency,
            grantDigest,
            presentationDigest,
            purposeDigest,
            uint64(block.number),
            uint64(block.timestamp)
        );
        unchecked {
            _count += 1;
        }
        emit UsageRecorded(id, certificateDoc, agency, grantDigest, presentationDigest, purposeDigest);
    }

    /// @notice A usage; all zero if unknown.
    function getUsage(bytes32 id)
        external
        view
        returns (
            bytes32 certificateDoc,
            bytes32 agencyUscc,
            bytes32 grantDigest,
            bytes32 presentationDigest,
            bytes32 purposeDigest,
            uint64 recordedBlock,
            uint64 timestamp
        )
    {
        Usage memory u = _usages[id];
        return (
            u.certificateDoc, u.agencyUscc, u.grantDigest, u.presentationDigest, u.purposeDigest, u.recordedBlock,
            u.timestamp
        );
    }

    /// @notice How many usages were recorded.
    function usageCount() external view returns (uint256) {
        return _count;
    }

    /// @notice SHA-256("lianzheng/grantee/agency/v1:" || USCC): the grantee digest of an agency (its USCC as
    /// bytes32, the 18 ASCII characters right-padded with zeros, as ConsortiumRegistry keys members).
    function agencyGranteeDigest(bytes32 agencyUscc) public pure returns (bytes32) {
        return GranteeDigest.agency(agencyUscc);
    }

    /// @notice The ConsortiumRegistry this ledger consults.
    function consortium() external view returns (address) {
        return address(_consortium);
    }

    /// @notice The GrantRegistry this ledger consults.
    function grantRegistry() external view returns (address) {
        return address(_grants);
    }

    // ---------------------------------------------------------------- internals

    function _checkGrant(bytes32 grant, bytes32 certificateDoc, bytes32 agency) private view {
        (bytes32 doc, bytes32 grantee, uint64 notBefore, uint64 expiresAt, uint8 status) = _grants.grantOf(grant);
        if (status == _GRANT_REVOKED) revert UsageLedgerGrantRevoked(grant);
        if (status != _GRANT_ACTIVE) revert UsageLedgerUnknownGrant(grant);
        uint64 time = uint64(block.timestamp);
        if (time < notBefore) revert UsageLedgerGrantNotYetValid(grant, notBefore, time);
        if (time >= expiresAt) revert UsageLedgerGrantExpired(grant, expiresAt, time);
        if (doc != certificateDoc) revert UsageLedgerCertificateMismatch(grant, doc, certificateDoc);
        if (grantee != agencyGranteeDigest(agency)) revert UsageLedgerWrongGrantee(grant, agency);
    }
}
