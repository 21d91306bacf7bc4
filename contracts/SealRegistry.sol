// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsortiumRegistry, ROLE_ADMIN, ROLE_ISSUER} from "./IConsortiumRegistry.sol";

/**
 * @title SealRegistry
 * @notice The e-seal registry (电子印章: 制章 / 用章 / 验章): each agency's seals with the digests of their image,
 * signing key and GB/T 38540 SES_SealInfo, their validity and status (Active, Suspended, Revoked). Only an
 * account of the owning agency (an Active member with ISSUER_ROLE) creates, suspends, reinstates or revokes
 * a seal; revocation is final. The seal-making authority (制章方, the platform operator named at deployment)
 * publishes the digests of the keys it signs SESeal structures with.
 * @dev The seal image, key and SESeal stay off chain; verifiers compare their digests with these. The status
 * history is the event log: {SealCreated}, {SealSuspended}, {SealReinstated}, {SealRevoked}.
 */
contract SealRegistry {
    uint8 private constant _NONE = 0;
    uint8 private constant _ACTIVE = 1;
    uint8 private constant _SUSPENDED = 2;
    uint8 private constant _REVOKED = 3;

    error SealRegistryUnauthorized(address account, uint64 role);
    error SealRegistryExists(bytes32 id);
    error SealRegistryUnknown(bytes32 id);
    error SealRegistryNotOwner(bytes32 id, address account);
    error SealRegistryInvalidStatus(bytes32 id, uint8 status);
    error SealRegistryInvalidValidity(uint64 validFrom, uint64 validUntil);
    error SealRegistryNotMaker(address account);

    event SealCreated(
        bytes32 indexed id,
        bytes32 indexed agencyUscc,
        bytes32 imageDigest,
        bytes32 keyDigest,
        bytes32 sealInfoDigest,
        uint64 validFrom,
        uint64 validUntil
    );
    event SealSuspended(bytes32 indexed id, bytes32 indexed agencyUscc, bytes32 reasonDigest);
    event SealReinstated(bytes32 indexed id, bytes32 indexed agencyUscc);
    event SealRevoked(bytes32 indexed id, bytes32 indexed agencyUscc, bytes32 reasonDigest);
    event MakerKeyPublished(bytes32 indexed keyDigest, bytes32 indexed makerUscc);

    struct Seal {
        bytes32 agencyUscc;
        bytes32 imageDigest;
        bytes32 keyDigest;
        bytes32 sealInfoDigest;
        // one slot
        uint64 validFrom;
        uint64 validUntil;
        uint64 createdBlock;
        uint64 updatedBlock;
        // status != None marks an existing seal
        uint8 status;
    }

    IConsortiumRegistry private immutable _consortium;
    bytes32 private immutable _maker;
    mapping(bytes32 id => Seal) private _seals;
    mapping(bytes32 keyDigest => uint64 block) private _makerKeys;

    /// @param consortium_ the ConsortiumRegistry consulted for members and roles.
    /// @param makerUscc_ the seal-making authority (制章方): the platform operator's USCC.
    constructor(address consortium_, bytes32 makerUscc_) {
        _consortium = IConsortiumRegistry(consortium_);
        _maker = makerUscc_;
    }

    /**
     * @notice Publishes the digest of a key the seal-making authority signs SESeal structures with.
     * @dev Requirements: the caller is an account of the maker member, Active with ADMIN_ROLE. Publishing a
     * digest again changes nothing. Emits {MakerKeyPublished} the first time.
     */
    function publishMakerKey(bytes32 keyDigest) external {
        if (!_consortium.hasRole(msg.sender, ROLE_ADMIN)) revert SealRegistryUnauthorized(msg.sender, ROLE_ADMIN);
        if (_consortium.memberOf(msg.sender) != _maker) revert SealRegistryNotMaker(msg.sender);
        if (_makerKeys[keyDigest] != 0) return;
        _makerKeys[keyDigest] = uint64(block.number);
        emit MakerKeyPublished(keyDigest, _maker);
    }

    /**
     * @notice Registers a seal of the caller's member.
     * @dev Requirements: ISSUER_ROLE (the owner is the caller's member); `id` new; validFrom < validUntil.
     * The seal starts Active. Emits {SealCreated}.
     */
    function create(
        bytes32 id,
        bytes32 imageDigest,
        bytes32 keyDigest,
        bytes32 sealInfoDigest,
        uint64 validFrom,
        uint64 validUntil
    ) external {
        bytes32 owner = _requireIssuer();
        Seal storage s = _seals[id];
        if (s.status != _NONE) revert SealRegistryExists(id);
        if (validFrom >= validUntil) revert SealRegistryInvalidValidity(validFrom, validUntil);
        s.agencyUscc = owner;
        s.imageDigest = imageDigest;
        s.keyDigest = keyDigest;
        s.sealInfoDigest = sealInfoDigest;
        s.validFrom = validFrom;
        s.validUntil = validUntil;
        s.createdBlock = uint64(block.number);
        s.updatedBlock = uint64(block.number);
        s.status = _ACTIVE;
        emit SealCreated(id, owner, imageDigest, keyDigest, sealInfoDigest, validFrom, validUntil);
    }

    /**
     * @notice Suspends an Active seal (reversible): sealing with it is refused until it is reinstated.
     * @dev Requirements: an account of the owning member with ISSUER_ROLE; status Active. Emits {SealSuspended}.
     */
    function suspend(bytes32 id, bytes32 reasonDigest) external {
        Seal storage s = _owned(id);
        _requireStatus(id, s, _ACTIVE);
        s.status = _SUSPENDED;
        s.updatedBlock = uint64(block.number);
        emit SealSuspended(id, s.agencyUscc, reasonDigest);
    }

    /**
     * @notice Reinstates a Suspended seal.
     * @dev Requirements: an account of the owning member with ISSUER_ROLE; status Suspended.
     * Emits {SealReinstated}.
     */
    function reinstate(bytes32 id) external {
        Seal storage s = _owned(id);
        _requireStatus(id, s, _SUSPENDED);
        s.status = _ACTIVE;
        s.updatedBlock = uint64(block.number);
        emit SealReinstated(id, s.agencyUscc);
    }

    /**
     * @notice Revokes a seal for good (from Active or Suspended).
     * @dev Requirements: an account of the owning member with ISSUER_ROLE; status not Revoked.
     * Emits {SealRevoked}.
     */
    function revoke(bytes32 id, bytes32 reasonDigest) external {
        Seal storage s = _owned(id);
        if (s.status == _REVOKED) revert SealRegistryInvalidStatus(id, s.status);
        s.status = _REVOKED;
        s.updatedBlock = uint64(block.number);
        emit SealRevoked(id, s.agencyUscc, reasonDigest);
    }

    /// @notice A seal; all zero if unknown. Status: 0 None, 1 Active, 2 Suspended, 3 Revoked.
    function getSeal(bytes32 id)
        external
        view
        returns (
            bytes32 agencyUscc,
            bytes32 imageDigest,
            bytes32 keyDigest,
            bytes32 sealInfoDigest,
            uint64 validFrom,
            uint64 validUntil,
            uint8 status,
            uint64 createdBlock,
            uint64 updatedBlock
        )
    {
        Seal memory s = _seals[id];
        return (
            s.agencyUscc,
            s.imageDigest,
            s.keyDigest,
            s.sealInfoDigest,
            s.validFrom,
            s.validUntil,
            s.status,
            s.createdBlock,
            s.updatedBlock
        );
    }

    /// @notice The block in which the maker published `keyDigest`, or 0.
    function makerKeySince(bytes32 keyDigest) external view returns (uint64) {
        return _makerKeys[keyDigest];
    }

    /// @notice The seal-making authority's USCC.
    function maker() external view returns (bytes32) {
        return _maker;
    }

    /// @notice The ConsortiumRegistry this registry consults.
    function consortium() external view returns (address) {
        return address(_consortium);
    }

    // ---------------------------------------------------------------- internals

    function _requireIssuer() private view returns (bytes32) {
        if (!_consortium.hasRole(msg.sender, ROLE_ISSUER)) revert SealRegistryUnauthorized(msg.sender, ROLE_ISSUER);
        return _consortium.memberOf(msg.sender);
    }

    function _owned(bytes32 id) private view returns (Seal storage s) {
        s = _seals[id];
        if (s.status == _NONE) revert SealRegistryUnknown(id);
        if (_consortium.memberOf(msg.sender) != s.agencyUscc) revert SealRegistryNotOwner(id, msg.sender);
        if (!_consortium.hasRole(msg.sender, ROLE_ISSUER)) revert SealRegistryUnauthorized(msg.sender, ROLE_ISSUER);
    }

    function _requireStatus(bytes32 id, Seal storage s, uint8 expected) private view {
        if (s.status != expected) revert SealRegistryInvalidStatus(id, s.status);
    }
}
