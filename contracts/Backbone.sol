// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/**
 * @title Backbone
 * @notice The 星火·链网 backbone on the main chain: the 省级超级节点 operator (the deployer, `owner`) registers
 * backbone nodes (骨干节点) and the business sub-chains they serve; each sub-chain's gateway submits, per
 * ledger, a hash-chained sequence of checkpoints (tree size, RFC 6962 root of the ledger's event log,
 * previous checkpoint hash, block range covered) and witnesses cosign them. The main chain may be another
 * chain than the sub-chain.
 * @dev checkpointHash = keccak256(abi.encode(subchainId, ledgerId, treeSize, root, prevHash, fromBlock,
 * toBlock, toBlockHash)). Checkpoint indices count from 0 per (sub-chain, ledger).
 */
contract Backbone {
    error BackboneUnauthorized(address account);
    error BackboneNodeExists(bytes32 nodeId);
    error BackboneUnknownNode(bytes32 nodeId);
    error BackboneSubchainExists(bytes32 subchainId);
    error BackboneUnknownSubchain(bytes32 subchainId);
    error BackboneNotGateway(bytes32 subchainId, address account);
    error BackboneCheckpointNotExtending(bytes32 subchainId, bytes32 ledgerId, uint64 lastSize, uint64 newSize);
    error BackbonePrevHashMismatch(bytes32 expected, bytes32 actual);
    error BackboneInvalidBlockRange(uint64 fromBlock, uint64 toBlock, uint64 expectedFrom);
    error BackboneUnknownCheckpoint(bytes32 hash);
    error BackboneAlreadyCosigned(bytes32 hash, address witness);
    error BackboneNotWitness(address account);

    event NodeRegistered(bytes32 indexed nodeId, string bid, string name);
    event SubchainRegistered(
        bytes32 indexed subchainId, bytes32 indexed nodeId, uint256 chainId, address gateway, string bid
    );
    event GatewaySet(bytes32 indexed subchainId, address gateway);
    event WitnessSet(address indexed account, bytes32 indexed uscc, bool allowed);
    event CheckpointSubmitted(
        bytes32 indexed subchainId,
        bytes32 indexed ledgerId,
        bytes32 indexed checkpointHash,
        uint64 treeSize,
        bytes32 root,
        bytes32 prevHash,
        uint64 fromBlock,
        uint64 toBlock,
        bytes32 toBlockHash,
        uint64 index
    );
    event CheckpointCosigned(bytes32 indexed checkpointHash, address indexed witness, bytes32 uscc, uint16 cosignatures);

    struct Node {
        bool exists;
        string bid;
        string name;
    }

    struct Subchain {
        bytes32 nodeId;
        uint256 chainId;
        address gateway;
        bool exists;
        string bid;
    }

    struct Checkpoint {
        bytes32 subchainId;
        bytes32 ledgerId;
        bytes32 root;
        // one slot
        uint64 treeSize;
        uint64 toBlock;
        uint64 submittedAt;
        uint16 cosignatures;
        bool exists;
    }

    /// The latest checkpoint of a (sub-chain, ledger) and how many it has had.
    struct Head {
        bytes32 hash;
        uint64 count;
    }

    struct Witness {
        bytes32 uscc;
        bool allowed;
    }

    /// The arguments of submitCheckpoint, kept in memory to stay within the EVM stack.
    struct Submission {
        bytes32 subchainId;
        bytes32 ledgerId;
        uint64 treeSize;
        bytes32 root;
        bytes32 prevHash;
        uint64 fromBlock;
        uint64 toBlock;
        bytes32 toBlockHash;
    }

    address private immutable _owner;
    string private _superNodeBid;
    mapping(bytes32 nodeId => Node) private _nodes;
    mapping(bytes32 subchainId => Subchain) private _subchains;
    mapping(bytes32 hash => Checkpoint) private _checkpoints;
    mapping(bytes32 subchainId => mapping(bytes32 ledgerId => Head)) private _heads;
    mapping(address account => Witness) private _witnesses;
    mapping(bytes32 hash => mapping(address witness => bool)) private _cosigned;

    /// @param superNodeBid_ the BID of the provincial super node operated by the deployer.
    constructor(string memory superNodeBid_) {
        _owner = msg.sender;
        _superNodeBid = superNodeBid_;
    }

    modifier onlyOwner() {
        if (msg.sender != _owner) revert BackboneUnauthorized(msg.sender);
        _;
    }

    /**
     * @notice Registers a backbone node (骨干节点).
     * @dev Requirements: owner; `nodeId` new. Emits {NodeRegistered}.
     */
    function registerNode(bytes32 nodeId, string calldata bid, string calldata name) external onlyOwner {
        Node storage n = _nodes[nodeId];
        if (n.exists) revert BackboneNodeExists(nodeId);
        n.exists = true;
        n.bid = bid;
        n.name = name;
        emit NodeRegistered(nodeId, bid, name);
    }

    /**
     * @notice Registers a business sub-chain served by node `nodeId`, with the gateway that submits its
     * checkpoints.
     * @dev Requirements: owner; `nodeId` registered; `subchainId` new. Emits {SubchainRegistered}.
     */
    function registerSubchain(bytes32 subchainId, bytes32 nodeId, uint256 chainId, address gateway, string calldata bid)
        external
        onlyOwner
    {
        if (!_nodes[nodeId].exists) revert BackboneUnknownNode(nodeId);
        Subchain storage s = _subchains[subchainId];
        if (s.exists) revert BackboneSubchainExists(subchainId);
        s.nodeId = nodeId;
        s.chainId = chainId;
        s.gateway = gateway;
        s.exists = true;
        s.bid = bid;
        emit SubchainRegistered(subchainId, nodeId, chainId, gateway, bid);
    }

    /**
     * @notice Replaces a sub-chain's gateway account.
     * @dev Requirements: owner; `subchainId` registered. Emits {GatewaySet}.
     */
    function setGateway(bytes32 subchainId, address gateway) external onlyOwner {
        Subchain storage s = _subchains[subchainId];
        if (!s.exists) revert BackboneUnknownSubchain(subchainId);
        s.gateway = gateway;
        emit GatewaySet(subchainId, gateway);
    }

    /**
     * @notice Allows or disallows `account` (of agency `uscc`) to cosign checkpoints.
     * @dev Requirements: owner. Emits {WitnessSet}.
     */
    function setWitness(address account, bytes32 uscc, bool allowed) external onlyOwner {
        _witnesses[account] = Witness(uscc, allowed);
        emit WitnessSet(account, uscc, allowed);
    }

    /**
     * @notice Records the next checkpoint of ledger `ledgerId` of sub-chain `subchainId`.
     * @dev Requirements: the caller is the sub-chain's gateway; for the first checkpoint of the pair
     * `prevHash` = 0; afterwards `prevHash` = the last checkpoint's hash, `treeSize` >= the last size (with
     * the same root when the size is unchanged: an RFC 6962 tree of a given size has one root) and
     * `fromBlock` = last `toBlock` + 1; always `fromBlock` <= `toBlock`. Emits {CheckpointSubmitted}.
     * @return checkpointHash keccak256(abi.encode(subchainId, ledgerId, treeSize, root, prevHash, fromBlock,
     * toBlock, toBlockHash)).
     */
    function submitCheckpoint(
        bytes32 subchainId,
        bytes32 ledgerId,
        uint64 treeSize,
        bytes32 root,
        bytes32 prevHash,
        uint64 fromBlock,
        uint64 toBlock,
        bytes32 toBlockHash
    ) external returns (bytes32 checkpointHash) {
        return _submit(Submission(subchainId, ledgerId, treeSize, root, prevHash, fromBlock, toBlock, toBlockHash));
    }

    /**
     * @notice Cosigns a checkpoint as a witness.
     * @dev Requirements: the caller is an allowed witness; the checkpoint exists; the caller has not
     * cosigned it yet. Emits {CheckpointCosigned}.
     */
    function cosign(bytes32 checkpointHash) external {
        Witness storage w = _witnesses[msg.sender];
        if (!w.allowed) revert BackboneNotWitness(msg.sender);
        Checkpoint storage c = _checkpoints[checkpointHash];
        if (!c.exists) revert BackboneUnknownCheckpoint(checkpointHash);
        if (_cosigned[checkpointHash][msg.sender]) revert BackboneAlreadyCosigned(checkpointHash, msg.sender);
        _cosigned[checkpointHash][msg.sender] = true;
        uint16 cosignatures = c.cosignatures + 1;
        c.cosignatures = cosignatures;
        emit CheckpointCosigned(checkpointHash, msg.sender, w.uscc, cosignatures);
    }

    /// @notice The latest checkpoint of (`subchainId`, `ledgerId`); all zero if none.
    function latestCheckpoint(bytes32 subchainId, bytes32 ledgerId)
        external
        view
        returns (bytes32 hash, uint64 treeSize, bytes32 root, uint64 toBlock, uint64 index, uint64 submittedAt)
    {
        Head storage h = _heads[subchainId][ledgerId];
        hash = h.hash;
        if (hash == 0) return (0, 0, 0, 0, 0, 0);
        Checkpoint storage c = _checkpoints[hash];
        return (hash, c.treeSize, c.root, c.toBlock, h.count - 1, c.submittedAt);
    }

    /// @notice A checkpoint by hash; all zero if unknown.
    function getCheckpoint(bytes32 hash)
        external
        view
        returns (
            bytes32 subchainId,
            bytes32 ledgerId,
            uint64 treeSize,
            bytes32 root,
            uint64 toBlock,
            uint64 submittedAt,
            uint16 cosignatures
        )
    {
        Checkpoint storage c = _checkpoints[hash];
        return (c.subchainId, c.ledgerId, c.treeSize, c.root, c.toBlock, c.submittedAt, c.cosignatures);
    }

    /// @notice A sub-chain; all zero/empty if unknown.
    function getSubchain(bytes32 subchainId)
        external
        view
        returns (bytes32 nodeId, uint256 chainId, address gateway, string memory bid)
    {
        Subchain storage s = _subchains[subchainId];
        return (s.nodeId, s.chainId, s.gateway, s.bid);
    }

    /// @notice A backbone node; `exists` is false if unknown.
    function getNode(bytes32 nodeId) external view returns (string memory bid, string memory name, bool exists) {
        Node storage n = _nodes[nodeId];
        return (n.bid, n.name, n.exists);
    }

    /// @notice The super node operator (the deployer).
    function owner() external view returns (address) {
        return _owner;
    }

    /// @notice The super node's BID.
    function superNodeBid() external view returns (string memory) {
        return _superNodeBid;
    }

    /// @notice True if `witness` has cosigned checkpoint `hash`.
    function hasCosigned(bytes32 hash, address witness) external view returns (bool) {
        return _cosigned[hash][witness];
    }

    // ---------------------------------------------------------------- internals

    function _submit(Submission memory s) private returns (bytes32 checkpointHash) {
        Subchain storage sc = _subchains[s.subchainId];
        if (!sc.exists) revert BackboneUnknownSubchain(s.subchainId);
        if (msg.sender != sc.gateway) revert BackboneNotGateway(s.subchainId, msg.sender);
        Head storage h = _heads[s.subchainId][s.ledgerId];
        _requireExtends(s, h.hash);
        checkpointHash = keccak256(
            abi.encode(s.subchainId, s.ledgerId, s.treeSize, s.root, s.prevHash, s.fromBlock, s.toBlock, s.toBlockHash)
        );
        Checkpoint storage c = _checkpoints[checkpointHash];
        c.subchainId = s.subchainId;
        c.ledgerId = s.ledgerId;
        c.root = s.root;
        c.treeSize = s.treeSize;
        c.toBlock = s.toBlock;
        c.submittedAt = uint64(block.timestamp);
        c.exists = true;
        uint64 index = h.count;
        h.hash = checkpointHash;
        h.count = index + 1;
        emit CheckpointSubmitted(
            s.subchainId,
            s.ledgerId,
            checkpointHash,
            s.treeSize,
            s.root,
            s.prevHash,
            s.fromBlock,
            s.toBlock,
            s.toBlockHash,
            index
        );
    }

    function _requireExtends(Submission memory s, bytes32 last) private view {
        if (s.prevHash != last) revert BackbonePrevHashMismatch(last, s.prevHash);
        uint64 expectedFrom = s.fromBlock;
        if (last != 0) {
            Checkpoint storage p = _checkpoints[last];
            if (s.treeSize < p.treeSize || (s.treeSize == p.treeSize && s.root != p.root)) {
                revert BackboneCheckpointNotExtending(s.subchainId, s.ledgerId, p.treeSize, s.treeSize);
            }
            expectedFrom = p.toBlock + 1;
        }
        if (s.fromBlock != expectedFrom || s.fromBlock > s.toBlock) {
            revert BackboneInvalidBlockRange(s.fromBlock, s.toBlock, expectedFrom);
        }
    }
}
