// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsortiumRegistry, ROLE_EXCHANGE, STATUS_ACTIVE} from "./IConsortiumRegistry.sol";

/**
 * @title ExchangeLedger
 * @notice The shared-data exchange chain (数据共享交换链): a two-party receipt of one data exchange between
 * agencies, request -> authorise (or refuse) -> deliver -> acknowledge (or dispute), each step signed by the
 * acting side's account. A delivery the consumer never acknowledged stays visible as Delivered.
 * @dev Each step needs an account of the acting party's member, which must still be Active with
 * EXCHANGE_ROLE.
 */
contract ExchangeLedger {
    uint8 private constant _NONE = 0;
    uint8 private constant _REQUESTED = 1;
    uint8 private constant _AUTHORISED = 2;
    uint8 private constant _REFUSED = 3;
    uint8 private constant _DELIVERED = 4;
    uint8 private constant _ACKNOWLEDGED = 5;
    uint8 private constant _DISPUTED = 6;

    error ExchangeLedgerUnauthorized(address account, uint64 role);
    error ExchangeLedgerExists(bytes32 id);
    error ExchangeLedgerUnknown(bytes32 id);
    error ExchangeLedgerNotParty(bytes32 id, address account);
    error ExchangeLedgerInvalidStep(bytes32 id, uint8 current, uint8 expected);
    error ExchangeLedgerInvalidProvider(bytes32 uscc);

    event ExchangeRequested(
        bytes32 indexed id,
        bytes32 indexed consumerUscc,
        bytes32 indexed providerUscc,
        bytes32 catalogueItem,
        bytes32 purposeDigest
    );
    event ExchangeAuthorised(bytes32 indexed id, bytes32 indexed providerUscc, bool granted, bytes32 reasonDigest);
    event ExchangeDelivered(
        bytes32 indexed id, bytes32 indexed providerUscc, bytes32 payloadDigest, uint64 size, uint32 records
    );
    event ExchangeAcknowledged(
        bytes32 indexed id, bytes32 indexed consumerUscc, bytes32 receivedDigest, bool matched
    );

    struct Exchange {
        bytes32 consumerUscc;
        bytes32 providerUscc;
        bytes32 catalogueItem;
        bytes32 purposeDigest;
        bytes32 payloadDigest;
        // one slot; step != None marks an existing exchange
        uint64 size;
        uint32 records;
        uint8 step;
        uint64 updatedBlock;
    }

    IConsortiumRegistry private immutable _consortium;
    mapping(bytes32 id => Exchange) private _exchanges;

    /// @param consortium_ the ConsortiumRegistry consulted for members and roles.
    constructor(address consortium_) {
        _consortium = IConsortiumRegistry(consortium_);
    }

    /**
     * @notice Records the caller's member's request for data item `catalogueItem` of `providerUscc`.
     * @dev Requirements: EXCHANGE_ROLE (the consumer is the caller's member); `id` new; the provider is an
     * Active member with EXCHANGE_ROLE other than the consumer. Emits {ExchangeRequested}.
     */
    function request(bytes32 id, bytes32 providerUscc, bytes32 catalogueItem, bytes32 purposeDigest) external {
        bytes32 consumer = _requireExchangeMember();
        Exchange storage e = _exchanges[id];
        if (e.step != _NONE) revert ExchangeLedgerExists(id);
        if (providerUscc == consumer || !_isActiveExchangeMember(providerUscc)) {
            revert ExchangeLedgerInvalidProvider(providerUscc);
        }
        e.consumerUscc = consumer;
        e.providerUscc = providerUscc;
        e.catalogueItem = catalogueItem;
        e.purposeDigest = purposeDigest;
        e.step = _REQUESTED;
        e.updatedBlock = uint64(block.number);
        emit ExchangeRequested(id, consumer, providerUscc, catalogueItem, purposeDigest);
    }

    /**
     * @notice The provider grants or refuses the request.
     * @dev Requirements: an account of the provider (Active, EXCHANGE_ROLE); step Requested.
     * Moves to Authorised or Refused. Emits {ExchangeAuthorised}.
     */
    function authorise(bytes32 id, bool granted, bytes32 reasonDigest) external {
        (Exchange storage e, bytes32 provider) = _actingProvider(id);
        _requireStep(id, e, _REQUESTED);
        e.step = granted ? _AUTHORISED : _REFUSED;
        e.updatedBlock = uint64(block.number);
        emit ExchangeAuthorised(id, provider, granted, reasonDigest);
    }

    /**
     * @notice The provider records the delivered payload's digest, size and record count.
     * @dev Requirements: an account of the provider (Active, EXCHANGE_ROLE); step Authorised.
     * Moves to Delivered. Emits {ExchangeDelivered}.
     */
    function deliver(bytes32 id, bytes32 payloadDigest, uint64 size, uint32 records) external {
        (Exchange storage e, bytes32 provider) = _actingProvider(id);
        _requireStep(id, e, _AUTHORISED);
        e.payloadDigest = payloadDigest;
        e.size = size;
        e.records = records;
        e.step = _DELIVERED;
        e.updatedBlock = uint64(block.number);
        emit ExchangeDelivered(id, provider, payloadDigest, size, records);
    }

    /**
     * @notice The consumer acknowledges receipt with the digest of what it received.
     * @dev Requirements: an account of the consumer (Active, EXCHANGE_ROLE); step Delivered. Moves to
     * Acknowledged if `receivedDigest` equals the delivered digest, else to Disputed.
     * Emits {ExchangeAcknowledged}.
     */
    function acknowledge(bytes32 id, bytes32 receivedDigest) external {
        Exchange storage e = _existing(id);
        bytes32 consumer = e.consumerUscc;
        _requireParty(id, consumer);
        _requireStep(id, e, _DELIVERED);
        bool matched = receivedDigest == e.payloadDigest;
        e.step = matched ? _ACKNOWLEDGED : _DISPUTED;
        e.updatedBlock = uint64(block.number);
        emit ExchangeAcknowledged(id, consumer, receivedDigest, matched);
    }

    /// @notice An exchange; all zero if unknown. Step: 0 None, 1 Requested, 2 Authorised, 3 Refused,
    /// 4 Delivered, 5 Acknowledged, 6 Disputed.
    function getExchange(bytes32 id)
        external
        view
        returns (
            bytes32 consumerUscc,
            bytes32 providerUscc,
            bytes32 catalogueItem,
            bytes32 purposeDigest,
            bytes32 payloadDigest,
            uint64 size,
            uint32 records,
            uint8 step,
            uint64 updatedBlock
        )
    {
        Exchange memory e = _exchanges[id];
        return (
            e.consumerUscc,
            e.providerUscc,
            e.catalogueItem,
            e.purposeDigest,
            e.payloadDigest,
            e.size,
            e.records,
            e.step,
            e.updatedBlock
        );
    }

    /// @notice The ConsortiumRegistry this ledger consults.
    function consortium() external view returns (address) {
        return address(_consortium);
    }

    // ---------------------------------------------------------------- internals

    function _requireExchangeMember() private view returns (bytes32) {
        if (!_consortium.hasRole(msg.sender, ROLE_EXCHANGE)) {
            revert ExchangeLedgerUnauthorized(msg.sender, ROLE_EXCHANGE);
        }
        return _consortium.memberOf(msg.sender);
    }

    function _existing(bytes32 id) private view returns (Exchange storage e) {
        e = _exchanges[id];
        if (e.step == _NONE) revert ExchangeLedgerUnknown(id);
    }

    /// The caller must be an account of `party` and still hold EXCHANGE_ROLE.
    function _requireParty(bytes32 id, bytes32 party) private view {
        if (_consortium.memberOf(msg.sender) != party) revert ExchangeLedgerNotParty(id, msg.sender);
        if (!_consortium.hasRole(msg.sender, ROLE_EXCHANGE)) {
            revert ExchangeLedgerUnauthorized(msg.sender, ROLE_EXCHANGE);
        }
    }

    function _actingProvider(bytes32 id) private view returns (Exchange storage e, bytes32 provider) {
        e = _existing(id);
        provider = e.providerUscc;
        _requireParty(id, provider);
    }

    function _requireStep(bytes32 id, Exchange storage e, uint8 expected) private view {
        if (e.step != expected) revert ExchangeLedgerInvalidStep(id, e.step, expected);
    }

    function _isActiveExchangeMember(bytes32 uscc) private view returns (bool) {
        (,, uint64 roles, uint8 status,,) = _consortium.getMember(uscc);
        return status == STATUS_ACTIVE && roles & ROLE_EXCHANGE != 0;
    }
}
