// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {
    IConsortiumRegistry,
    ROLE_ADMIN,
    ROLE_ISSUER,
    ROLE_REVOKER,
    ROLE_EVIDENCE,
    ROLE_EXCHANGE,
    ROLE_AUDITOR,
    ROLE_GATEWAY,
    STATUS_NONE,
    STATUS_ACTIVE,
    STATUS_SUSPENDED,
    STATUS_REMOVED
} from "./IConsortiumRegistry.sol";

/**
 * @title ConsortiumRegistry
 * @notice The consortium (联盟) of agencies of the provincial digital government: members keyed by USCC,
 * their accounts, BIDs and role bits. Admitting, changing roles, suspending, reinstating, removing a
 * member, rotating its key (an account or its SM2 signing key), adding an account and changing the threshold all
 * go through proposals that
 * need M-of-N approvals of admin members (`requiredApprovals()` = min(threshold, Active admins)).
 * @dev Action preconditions are checked when proposed and again when executed. Approvals are counted per
 * member, and at execution only approvals of members that are still Active admins count, so suspending a
 * compromised admin also voids its pending approvals.
 */
contract ConsortiumRegistry is IConsortiumRegistry {
    uint64 public constant ADMIN_ROLE = ROLE_ADMIN;
    uint64 public constant ISSUER_ROLE = ROLE_ISSUER;
    uint64 public constant REVOKER_ROLE = ROLE_REVOKER;
    uint64 public constant EVIDENCE_ROLE = ROLE_EVIDENCE;
    uint64 public constant EXCHANGE_ROLE = ROLE_EXCHANGE;
    uint64 public constant AUDITOR_ROLE = ROLE_AUDITOR;
    uint64 public constant GATEWAY_ROLE = ROLE_GATEWAY;

    // Proposal actions (the `uint8 action` of propose/getProposal/ProposalCreated).
    uint8 private constant _ADMIT = 1;
    uint8 private constant _SET_ROLES = 2;
    uint8 private constant _SUSPEND = 3;
    uint8 private constant _REINSTATE = 4;
    uint8 private constant _REMOVE = 5;
    uint8 private constant _ROTATE_KEY = 6;
    uint8 private constant _ADD_ACCOUNT = 7;
    uint8 private constant _SET_THRESHOLD = 8;
    uint8 private constant _ROTATE_SM2_KEY = 9;
    uint256 private constant _SM2_KEY_LENGTH = 64; // GB/T 32918.1 public key x || y, without the 0x04 prefix

    struct Member {
        // slot 0: everything a role check reads
        uint64 roles;
        uint8 status;
        uint64 admittedBlock;
        uint64 updatedBlock;
        string name;
        string bid;
        address[] accounts;
        bytes sm2Key; // the application-signature key (docs/CRYPTO.md); empty for a member without one
    }

    /// Who an SM2 key belongs to and when it was valid (block timestamps; until = 0: still current).
    struct Sm2KeyRecord {
        bytes32 uscc;
        uint64 since;
        uint64 until;
    }

    struct Proposal {
        bytes32 uscc;
        bytes32 proposer;
        // one slot
        uint8 action;
        uint64 expiresAt;
        uint16 approvals;
        bool executed;
        bytes data;
        bytes32[] approvers;
    }

    mapping(bytes32 uscc => Member) private _members;
    bytes32[] private _memberList;
    mapping(address account => bytes32 uscc) private _memberOf;
    mapping(bytes32 issuer => mapping(bytes32 delegate => bool)) private _revokerDelegates;
    mapping(bytes32 keyHash => Sm2KeyRecord) private _sm2Keys;
    mapping(uint256 id => Proposal) private _proposals;
    mapping(uint256 id => mapping(bytes32 uscc => bool)) private _approved;
    // where each member's node serves its public API (verification by identifier on other nodes); set by the
    // member itself: it vouches for nothing but where to ask, and every answer is checked against this chain
    mapping(bytes32 uscc => string) private _endpoints;

    /// @notice A member published the base URL of the node that serves its public API.
    event EndpointSet(bytes32 indexed uscc, string url);

    /// @notice The endpoint is empty, longer than 256 bytes, or not http(s).
    error ConsortiumInvalidEndpoint();
    uint256 private _proposalCount;
    // one slot
    uint64 private _proposalTtl;
    uint16 private _activeAdmins;
    uint8 private _threshold;

    /**
     * @notice Creates the consortium with its genesis member.
     * @dev Requirements: `roles` includes ADMIN_ROLE and the member is valid (non-zero USCC, non-empty
     * name, bid and accounts, distinct non-zero accounts; `sm2Key` empty or 64 bytes); `threshold_` >= 1.
     * Emits {MemberAdmitted} and, with a key, {MemberSm2KeySet}.
     */
    constructor(
        bytes32 uscc,
        string memory name,
        string memory bid,
        address[] memory accounts,
        uint64 roles,
        bytes memory sm2Key,
        uint8 threshold_,
        uint64 proposalTtl_
    ) {
        if (threshold_ == 0) revert ConsortiumInvalidThreshold(threshold_);
        if (roles & ROLE_ADMIN == 0) revert ConsortiumInvalidMember(uscc);
        _validateAdmission(uscc, name, bid, accounts);
        _requireFreeSm2Key(uscc, sm2Key, true);
        _threshold = threshold_;
        _proposalTtl = proposalTtl_;
        _admit(uscc, name, bid, accounts, roles);
        _setSm2Key(uscc, _members[uscc], sm2Key);
    }

    // ---------------------------------------------------------------- governance

    /// @inheritdoc IConsortiumRegistry
    function propose(uint8 action, bytes32 uscc, bytes calldata data) external returns (uint256 id) {
        bytes32 proposer = _requireAdmin();
        _dispatch(action, uscc, data, false);
        id = ++_proposalCount;
        uint64 expiresAt = _expiry();
        Proposal storage p = _proposals[id];
        p.uscc = uscc;
        p.proposer = proposer;
        p.action = action;
        p.expiresAt = expiresAt;
        p.approvals = 1;
        p.data = data;
        p.approvers.push(proposer);
        _approved[id][proposer] = true;
        emit ProposalCreated(id, action, uscc, proposer, expiresAt, data);
        emit ProposalApproved(id, proposer, 1);
    }

    /// @inheritdoc IConsortiumRegistry
    function approve(uint256 id) external {
        bytes32 approver = _requireAdmin();
        Proposal storage p = _pendingProposal(id);
        if (_approved[id][approver]) revert ConsortiumAlreadyApproved(id, approver);
        _approved[id][approver] = true;
        p.approvers.push(approver);
        uint16 approvals = p.approvals + 1;
        p.approvals = approvals;
        emit ProposalApproved(id, approver, approvals);
    }

    /// @inheritdoc IConsortiumRegistry
    function execute(uint256 id) external {
        bytes32 executor = _requireAdmin();
        Proposal storage p = _pendingProposal(id);
        uint16 valid = _validApprovals(p);
        uint16 required = requiredApprovals();
        if (valid < required) revert ConsortiumInsufficientApprovals(id, valid, required);
        p.executed = true;
        _dispatch(p.action, p.uscc, p.data, true);
        emit ProposalExecuted(id, executor);
    }

    /// @inheritdoc IConsortiumRegistry
    function setRevokerDelegate(bytes32 delegateUscc, bool allowed) external {
        bytes32 issuer = _memberOf[msg.sender];
        Member storage m = _members[issuer];
        if (issuer == 0 || m.status != STATUS_ACTIVE || m.roles & ROLE_ISSUER == 0) {
            revert ConsortiumUnauthorized(msg.sender, ROLE_ISSUER);
        }
        if (_members[delegateUscc].status == STATUS_NONE) revert ConsortiumMemberNotFound(delegateUscc);
        if (delegateUscc == issuer) revert ConsortiumInvalidMember(delegateUscc);
        _revokerDelegates[issuer][delegateUscc] = allowed;
        emit RevokerDelegateSet(issuer, delegateUscc, allowed);
    }

    /**
     * @notice Publishes where the caller's node serves its public API (an http(s) base URL, at most 256 bytes).
     * @dev Requirements: the caller is an account of an Active member. Emits {EndpointSet}.
     */
    function setEndpoint(string calldata url) external {
        bytes32 uscc = _memberOf[msg.sender];
        if (uscc == 0 || _members[uscc].status != STATUS_ACTIVE) revert ConsortiumUnauthorized(msg.sender, 0);
        bytes memory b = bytes(url);
        if (b.length < 8 || b.length > 256 || b[0] != "h" || b[1] != "t" || b[2] != "t" || b[3] != "p") {
            revert ConsortiumInvalidEndpoint();
        }
        _endpoints[uscc] = url;
        emit EndpointSet(uscc, url);
    }

    /// @notice The base URL of the node serving member `uscc`'s public API ("" if it published none).
    function endpointOf(bytes32 uscc) external view returns (string memory) {
        return _endpoints[uscc];
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IConsortiumRegistry
    function requiredApprovals() public view returns (uint16) {
        uint16 t = _threshold;
        uint16 admins = _activeAdmins;
        return t < admins ? t : admins;
    }

    /// @inheritdoc IConsortiumRegistry
    function memberOf(address account) external view returns (bytes32) {
        return _memberOf[account];
    }

    /// @inheritdoc IConsortiumRegistry
    function getMember(bytes32 uscc)
        external
        view
        returns (
            string memory name,
            string memory bid,
            uint64 roles,
            uint8 status,
            uint64 admittedBlock,
            uint64 updatedBlock
        )
    {
        Member storage m = _members[uscc];
        return (m.name, m.bid, m.roles, m.status, m.admittedBlock, m.updatedBlock);
    }

    /// @inheritdoc IConsortiumRegistry
    function memberAccounts(bytes32 uscc) external view returns (address[] memory) {
        return _members[uscc].accounts;
    }

    /// @inheritdoc IConsortiumRegistry
    function memberSm2Key(bytes32 uscc) external view returns (bytes memory) {
        return _members[uscc].sm2Key;
    }

    /// @inheritdoc IConsortiumRegistry
    function sm2KeyRecord(bytes32 keyHash) external view returns (bytes32 uscc, uint64 since, uint64 until) {
        Sm2KeyRecord storage r = _sm2Keys[keyHash];
        return (r.uscc, r.since, r.until);
    }

    /// @inheritdoc IConsortiumRegistry
    function memberCount() external view returns (uint256) {
        return _memberList.length;
    }

    /// @inheritdoc IConsortiumRegistry
    function memberAt(uint256 index) external view returns (bytes32) {
        return _memberList[index];
    }

    /// @inheritdoc IConsortiumRegistry
    function hasRole(address account, uint64 role) external view returns (bool) {
        bytes32 uscc = _memberOf[account];
        if (uscc == 0 || role == 0) return false;
        Member storage m = _members[uscc];
        return m.status == STATUS_ACTIVE && m.roles & role == role;
    }

    /// @inheritdoc IConsortiumRegistry
    function canRevokeFor(address account, bytes32 issuerUscc) external view returns (bool) {
        bytes32 uscc = _memberOf[account];
        if (uscc == 0) return false;
        Member storage m = _members[uscc];
        if (m.status != STATUS_ACTIVE) return false;
        if (uscc == issuerUscc) return m.roles & (ROLE_ISSUER | ROLE_REVOKER) != 0;
        return m.roles & ROLE_REVOKER != 0 && _revokerDelegates[issuerUscc][uscc];
    }

    /// @inheritdoc IConsortiumRegistry
    function isRevokerDelegate(bytes32 issuer, bytes32 delegate) external view returns (bool) {
        return _revokerDelegates[issuer][delegate];
    }

    /// @inheritdoc IConsortiumRegistry
    function threshold() external view returns (uint8) {
        return _threshold;
    }

    /// @inheritdoc IConsortiumRegistry
    function proposalTtl() external view returns (uint64) {
        return _proposalTtl;
    }

    /// @inheritdoc IConsortiumRegistry
    function proposalCount() external view returns (uint256) {
        return _proposalCount;
    }

    /// @inheritdoc IConsortiumRegistry
    function getProposal(uint256 id)
        external
        view
        returns (
            uint8 action,
            bytes32 uscc,
            bytes memory data,
            bytes32 proposer,
            uint64 expiresAt,
            uint16 approvals,
            bool executed
        )
    {
        Proposal storage p = _proposals[id];
        return (p.action, p.uscc, p.data, p.proposer, p.expiresAt, p.approvals, p.executed);
    }

    /// @inheritdoc IConsortiumRegistry
    function hasApproved(uint256 id, bytes32 uscc) external view returns (bool) {
        return _approved[id][uscc];
    }

    // ---------------------------------------------------------------- internals

    /// The caller's member, which must be Active and hold ADMIN_ROLE.
    function _requireAdmin() private view returns (bytes32 uscc) {
        uscc = _memberOf[msg.sender];
        Member storage m = _members[uscc];
        if (uscc == 0 || m.status != STATUS_ACTIVE || m.roles & ROLE_ADMIN == 0) {
            revert ConsortiumUnauthorized(msg.sender, ROLE_ADMIN);
        }
    }

    function _pendingProposal(uint256 id) private view returns (Proposal storage p) {
        if (id == 0 || id > _proposalCount) revert ConsortiumProposalNotFound(id);
        p = _proposals[id];
        if (p.executed) revert ConsortiumProposalAlreadyExecuted(id);
        if (block.timestamp > p.expiresAt) revert ConsortiumProposalExpired(id, p.expiresAt);
    }

    /// Approvals of members that are Active admins now.
    function _validApprovals(Proposal storage p) private view returns (uint16 valid) {
        uint256 n = p.approvers.length;
        for (uint256 i = 0; i < n; ++i) {
            Member storage m = _members[p.approvers[i]];
            if (m.status == STATUS_ACTIVE && m.roles & ROLE_ADMIN != 0) ++valid;
        }
    }

    function _expiry() private view returns (uint64) {
        uint256 e = block.timestamp + _proposalTtl;
        return e > type(uint64).max ? type(uint64).max : uint64(e);
    }

    /**
     * Checks an action's preconditions and, when `perform` is set, performs it. Called by `propose`
     * (check only) and by `execute` (check again, then apply), so both see exactly the same rules.
     */
    function _dispatch(uint8 action, bytes32 uscc, bytes memory data, bool perform) private {
        if (action == _ADMIT) {
            (string memory name, string memory bid, address[] memory accounts, uint64 roles, bytes memory sm2Key) =
                abi.decode(data, (string, string, address[], uint64, bytes));
            _validateAdmission(uscc, name, bid, accounts);
            _requireFreeSm2Key(uscc, sm2Key, true);
            if (perform) {
                _admit(uscc, name, bid, accounts, roles);
                _setSm2Key(uscc, _members[uscc], sm2Key);
            }
        } else if (action == _SET_ROLES) {
            _requireLength(action, data, 32);
            uint64 roles = abi.decode(data, (uint64));
            Member storage m = _current(uscc);
            if (roles & ROLE_ADMIN == 0) _requireNotLastAdmin(uscc, m);
            if (perform) _setRoles(uscc, m, roles);
        } else if (action == _SUSPEND) {
            _requireLength(action, data, 0);
            Member storage m = _existing(uscc);
            if (m.status != STATUS_ACTIVE) revert ConsortiumInvalidStatus(uscc, m.status);
            _requireNotLastAdmin(uscc, m);
            if (perform) _setStatus(uscc, m, STATUS_SUSPENDED);
        } else if (action == _REINSTATE) {
            _requireLength(action, data, 0);
            Member storage m = _existing(uscc);
            if (m.status != STATUS_SUSPENDED) revert ConsortiumInvalidStatus(uscc, m.status);
            if (perform) _setStatus(uscc, m, STATUS_ACTIVE);
        } else if (action == _REMOVE) {
            _requireLength(action, data, 0);
            Member storage m = _current(uscc);
            _requireNotLastAdmin(uscc, m);
            if (perform) _setStatus(uscc, m, STATUS_REMOVED);
        } else if (action == _ROTATE_KEY) {
            (address oldAccount, address newAccount, string memory newBid) =
                abi.decode(data, (address, address, string));
            Member storage m = _current(uscc);
            if (_memberOf[oldAccount] != uscc) revert ConsortiumAccountNotFound(oldAccount);
            _requireFreeAccount(uscc, newAccount);
            if (perform) _rotateKey(uscc, m, oldAccount, newAccount, newBid);
        } else if (action == _ADD_ACCOUNT) {
            _requireLength(action, data, 32);
            address account = abi.decode(data, (address));
            Member storage m = _current(uscc);
            _requireFreeAccount(uscc, account);
            if (perform) _addAccount(uscc, m, account);
        } else if (action == _ROTATE_SM2_KEY) {
            (bytes memory newKey, string memory newBid) = abi.decode(data, (bytes, string));
            Member storage m = _current(uscc);
            _requireFreeSm2Key(uscc, newKey, false);
            if (perform) {
                // An empty newBid keeps the member's BID (an intl deployment whose BIDs are secp256k1 ones).
                if (bytes(newBid).length != 0) m.bid = newBid;
                m.updatedBlock = uint64(block.number);
                _setSm2Key(uscc, m, newKey);
            }
        } else if (action == _SET_THRESHOLD) {
            _requireLength(action, data, 32);
            uint8 newThreshold = abi.decode(data, (uint8));
            if (uscc != 0) revert ConsortiumInvalidAction(action);
            if (newThreshold == 0) revert ConsortiumInvalidThreshold(newThreshold);
            if (perform) {
                uint8 oldThreshold = _threshold;
                _threshold = newThreshold;
                emit ThresholdChanged(oldThreshold, newThreshold);
            }
        } else {
            revert ConsortiumInvalidAction(action);
        }
    }

    function _requireLength(uint8 action, bytes memory data, uint256 length) private pure {
        if (data.length != length) revert ConsortiumInvalidAction(action);
    }

    /// A member that exists (any status).
    function _existing(bytes32 uscc) private view returns (Member storage m) {
        m = _members[uscc];
        if (m.status == STATUS_NONE) revert ConsortiumMemberNotFound(uscc);
    }

    /// A member that exists and has not been removed.
    function _current(bytes32 uscc) private view returns (Member storage m) {
        m = _existing(uscc);
        if (m.status == STATUS_REMOVED) revert ConsortiumInvalidStatus(uscc, STATUS_REMOVED);
    }

    /// Refuses to take the last Active admin out (callers decide whether the change drops ADMIN).
    function _requireNotLastAdmin(bytes32 uscc, Member storage m) private view {
        if (m.status == STATUS_ACTIVE && m.roles & ROLE_ADMIN != 0 && _activeAdmins <= 1) {
            revert ConsortiumLastAdmin(uscc);
        }
    }

    function _requireFreeAccount(bytes32 uscc, address account) private view {
        if (account == address(0)) revert ConsortiumInvalidMember(uscc);
        if (_memberOf[account] != 0) revert ConsortiumAccountInUse(account);
    }

    /// A 64-byte SM2 key never registered before (an old key may not come back: records signed with it
    /// after its rotation must stay refusable); `optional` allows an empty key (a member without one).
    function _requireFreeSm2Key(bytes32 uscc, bytes memory key, bool optional) private view {
        if (key.length == 0 && optional) return;
        if (key.length != _SM2_KEY_LENGTH || _sm2Keys[keccak256(key)].uscc != 0) revert ConsortiumInvalidSm2Key(uscc);
    }

    /// Makes `key` the member's SM2 key from now on and closes the validity of the key it replaces.
    function _setSm2Key(bytes32 uscc, Member storage m, bytes memory key) private {
        if (key.length == 0) return;
        uint64 now_ = uint64(block.timestamp);
        if (m.sm2Key.length != 0) _sm2Keys[keccak256(m.sm2Key)].until = now_;
        bytes32 keyHash = keccak256(key);
        _sm2Keys[keyHash] = Sm2KeyRecord(uscc, now_, 0);
        m.sm2Key = key;
        emit MemberSm2KeySet(uscc, keyHash, key, m.bid);
    }

    function _validateAdmission(bytes32 uscc, string memory name, string memory bid, address[] memory accounts)
        private
        view
    {
        if (uscc == 0 || bytes(name).length == 0 || bytes(bid).length == 0 || accounts.length == 0) {
            revert ConsortiumInvalidMember(uscc);
        }
        if (_members[uscc].status != STATUS_NONE) revert ConsortiumMemberExists(uscc);
        for (uint256 i = 0; i < accounts.length; ++i) {
            _requireFreeAccount(uscc, accounts[i]);
            for (uint256 j = 0; j < i; ++j) {
                if (accounts[j] == accounts[i]) revert ConsortiumAccountInUse(accounts[i]);
            }
        }
    }

    function _admit(bytes32 uscc, string memory name, string memory bid, address[] memory accounts, uint64 roles)
        private
    {
        Member storage m = _members[uscc];
        m.roles = roles;
        m.status = STATUS_ACTIVE;
        m.admittedBlock = uint64(block.number);
        m.updatedBlock = uint64(block.number);
        m.name = name;
        m.bid = bid;
        m.accounts = accounts;
        for (uint256 i = 0; i < accounts.length; ++i) {
            _memberOf[accounts[i]] = uscc;
        }
        _memberList.push(uscc);
        if (roles & ROLE_ADMIN != 0) ++_activeAdmins;
        emit MemberAdmitted(uscc, name, bid, roles, accounts);
    }

    function _setRoles(bytes32 uscc, Member storage m, uint64 roles) private {
        uint64 oldRoles = m.roles;
        bool wasAdmin = _isActiveAdmin(m);
        m.roles = roles;
        m.updatedBlock = uint64(block.number);
        _recountAdmin(wasAdmin, _isActiveAdmin(m));
        emit MemberRolesChanged(uscc, oldRoles, roles);
    }

    function _setStatus(bytes32 uscc, Member storage m, uint8 status) private {
        uint8 oldStatus = m.status;
        bool wasAdmin = _isActiveAdmin(m);
        m.status = status;
        m.updatedBlock = uint64(block.number);
        _recountAdmin(wasAdmin, _isActiveAdmin(m));
        emit MemberStatusChanged(uscc, oldStatus, status);
    }

    function _rotateKey(bytes32 uscc, Member storage m, address oldAccount, address newAccount, string memory newBid)
        private
    {
        address[] storage accounts = m.accounts;
        for (uint256 i = 0; i < accounts.length; ++i) {
            if (accounts[i] == oldAccount) {
                accounts[i] = newAccount;
                break;
            }
        }
        delete _memberOf[oldAccount];
        _memberOf[newAccount] = uscc;
        // An empty newBid keeps the member's BID (rotating one of several accounts).
        if (bytes(newBid).length != 0) m.bid = newBid;
        m.updatedBlock = uint64(block.number);
        emit MemberKeyRotated(uscc, oldAccount, newAccount, m.bid);
    }

    function _addAccount(bytes32 uscc, Member storage m, address account) private {
        m.accounts.push(account);
        _memberOf[account] = uscc;
        m.updatedBlock = uint64(block.number);
        emit MemberAccountAdded(uscc, account);
    }

    function _isActiveAdmin(Member storage m) private view returns (bool) {
        return m.status == STATUS_ACTIVE && m.roles & ROLE_ADMIN != 0;
    }

    function _recountAdmin(bool wasAdmin, bool isAdmin) private {
        if (wasAdmin && !isAdmin) --_activeAdmins;
        else if (!wasAdmin && isAdmin) ++_activeAdmins;
    }
}
