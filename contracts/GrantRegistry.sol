// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsortiumRegistry, STATUS_ACTIVE} from "./IConsortiumRegistry.sol";
import {GranteeDigest} from "./GranteeDigest.sol";

/**
 * @title IGrantRegistry
 * @notice The view other contracts (the usage ledger) consult: a grant's certificate, grantee, window and status.
 */
interface IGrantRegistry {
    /// @notice A grant by its digest; all zero (status 0 Unknown) if never anchored. Status: 1 Active, 2 Revoked.
    function grantOf(bytes32 grantDigest)
        external
        view
        returns (bytes32 certificateDoc, bytes32 granteeDigest, uint64 notBefore, uint64 expiresAt, uint8 status);
}

/**
 * @title GrantRegistry
 * @notice Grants (授权他人用证): a certificate holder lets a named party (an agency or a person, named only by a
 * salted digest) present or fetch one certificate for a purpose until an expiry; the holder can revoke it at any
 * time. Only digests are stored: the grant itself (signed by the holder's P-256 key, with its purpose and scope)
 * stays with the holder and the grantee.
 * @dev Holders have no chain accounts: a consortium member's node relays the holder's signed grant or
 * revocation statement, after checking off chain that the holder's ECDSA P-256 signature verifies, that the
 * certificate is registered and bound to that holder key, and that it is not revoked (the EVM here has no P-256
 * precompile, and CertificateLedger keeps no per-document record until a status change). Audit replay re-checks
 * the same against the grants the nodes stored. The contract enforces that the relay is an Active member, that a
 * grant is anchored once, with a sane window, and that only an Active grant is revoked, once.
 */
contract GrantRegistry is IGrantRegistry {
    uint8 private constant _UNKNOWN = 0;
    uint8 private constant _ACTIVE = 1;
    uint8 private constant _REVOKED = 2;

    error GrantRegistryUnauthorized(address account);
    error GrantRegistryInvalidGrant(bytes32 grantDigest);
    error GrantRegistryInvalidWindow(uint64 notBefore, uint64 expiresAt);
    error GrantRegistryExists(bytes32 grantDigest);
    error GrantRegistryUnknown(bytes32 grantDigest);
    error GrantRegistryAlreadyRevoked(bytes32 grantDigest);

    event GrantAnchored(
        bytes32 indexed grantDigest,
        bytes32 indexed certificateDoc,
        bytes32 indexed relayUscc,
        bytes32 granteeDigest,
        uint64 notBefore,
        uint64 expiresAt
    );
    event GrantRevoked(bytes32 indexed grantDigest, bytes32 indexed relayUscc, bytes32 revocationDigest);

    struct Grant {
        bytes32 certificateDoc;
        bytes32 granteeDigest;
        // one slot
        uint64 notBefore;
        uint64 expiresAt;
        uint64 anchoredBlock;
        uint8 status;
    }

    IConsortiumRegistry private immutable _consortium;
    mapping(bytes32 grantDigest => Grant) private _grants;

    /// @param consortium_ the ConsortiumRegistry consulted for members.
    constructor(address consortium_) {
        _consortium = IConsortiumRegistry(consortium_);
    }

    /**
     * @notice Anchors a holder-signed grant (relayed by the caller's member node).
     * @dev Requirements: the caller is an account of an Active member; `grantDigest`, `certificateDoc` and
     * `granteeDigest` nonzero; notBefore < expiresAt and expiresAt in the future; the grant not anchored before.
     * Emits {GrantAnchored}.
     */
    function anchorGrant(
        bytes32 grantDigest,
        bytes32 certificateDoc,
        bytes32 granteeDigest,
        uint64 notBefore,
        uint64 expiresAt
    ) external {
        bytes32 relay = _requireMember();
        if (grantDigest == bytes32(0) || certificateDoc == bytes32(0) || granteeDigest == bytes32(0)) {
            revert GrantRegistryInvalidGrant(grantDigest);
        }
        if (notBefore >= expiresAt || expiresAt <= block.timestamp) {
            revert GrantRegistryInvalidWindow(notBefore, expiresAt);
        }
        Grant storage g = _grants[grantDigest];
        if (g.status != _UNKNOWN) revert GrantRegistryExists(grantDigest);
        g.certificateDoc = certificateDoc;
        g.granteeDigest = granteeDigest;
        g.notBefore = notBefore;
        g.expiresAt = expiresAt;
        g.anchoredBlock = uint64(block.number);
        g.status = _ACTIVE;
        emit GrantAnchored(grantDigest, certificateDoc, relay, granteeDigest, notBefore, expiresAt);
    }

    /**
     * @notice Revokes an Active grant with the digest of the holder's signed revocation statement.
     * @dev Requirements: the caller is an account of an Active member; the grant is Active. Final.
     * Emits {GrantRevoked}.
     */
    function revokeGrant(bytes32 grantDigest, bytes32 revocationDigest) external {
        bytes32 relay = _requireMember();
        Grant storage g = _grants[grantDigest];
        if (g.status == _UNKNOWN) revert GrantRegistryUnknown(grantDigest);
        if (g.status == _REVOKED) revert GrantRegistryAlreadyRevoked(grantDigest);
        g.status = _REVOKED;
        emit GrantRevoked(grantDigest, relay, revocationDigest);
    }

    /// @inheritdoc IGrantRegistry
    function grantOf(bytes32 grantDigest)
        external
        view
        returns (bytes32 certificateDoc, bytes32 granteeDigest, uint64 notBefore, uint64 expiresAt, uint8 status)
    {
        Grant storage g = _grants[grantDigest];
        return (g.certificateDoc, g.granteeDigest, g.notBefore, g.expiresAt, g.status);
    }

    /// @notice The block in which the grant was anchored, or 0.
    function anchoredBlock(bytes32 grantDigest) external view returns (uint64) {
        return _grants[grantDigest].anchoredBlock;
    }

    /// @notice The grantee digest of the agency with this member key (USCC, zero-padded): see {GranteeDigest}.
    function agencyGranteeDigest(bytes32 usccKey) external pure returns (bytes32) {
        return GranteeDigest.agency(usccKey);
    }

    /// @notice The ConsortiumRegistry this registry consults.
    function consortium() external view returns (address) {
        return address(_consortium);
    }

    function _requireMember() private view returns (bytes32 uscc) {
        uscc = _consortium.memberOf(msg.sender);
        if (uscc == bytes32(0)) revert GrantRegistryUnauthorized(msg.sender);
        (,,, uint8 status,,) = _consortium.getMember(uscc);
        if (status != STATUS_ACTIVE) revert GrantRegistryUnauthorized(msg.sender);
    }
}
