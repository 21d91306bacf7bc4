// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// Role bits (docs/CONTRACTS.md). ConsortiumRegistry re-exports them as `*_ROLE` public constants;
// the ledgers import these file-level constants so that a role check costs no external call.
uint64 constant ROLE_ADMIN = 1 << 0;
uint64 constant ROLE_ISSUER = 1 << 1;
uint64 constant ROLE_REVOKER = 1 << 2;
uint64 constant ROLE_EVIDENCE = 1 << 3;
uint64 constant ROLE_EXCHANGE = 1 << 4;
uint64 constant ROLE_AUDITOR = 1 << 5;
uint64 constant ROLE_GATEWAY = 1 << 6;

// Member status values as they appear in the ABI (`uint8`).
uint8 constant STATUS_NONE = 0;
uint8 constant STATUS_ACTIVE = 1;
uint8 constant STATUS_SUSPENDED = 2;
uint8 constant STATUS_REMOVED = 3;

/**
 * @title IConsortiumRegistry
 * @notice The consortium of agencies (members keyed by USCC as `bytes32`) and their accounts and roles,
 * governed by M-of-N approvals of admin members. The ledgers consult it through this interface.
 */
interface IConsortiumRegistry {
    /// The account does not belong to an Active member holding `role`.
    error ConsortiumUnauthorized(address account, uint64 role);
    /// A member with this USCC was already admitted (whatever its status now).
    error ConsortiumMemberExists(bytes32 uscc);
    /// No member with this USCC.
    error ConsortiumMemberNotFound(bytes32 uscc);
    /// The account already belongs to a member.
    error ConsortiumAccountInUse(address account);
    /// The account does not belong to the member named in the proposal.
    error ConsortiumAccountNotFound(address account);
    /// The member's status does not allow the action.
    error ConsortiumInvalidStatus(bytes32 uscc, uint8 status);
    /// Unknown action code, or a payload that does not fit the action.
    error ConsortiumInvalidAction(uint8 action);
    /// A threshold of zero.
    error ConsortiumInvalidThreshold(uint8 threshold);
    /// Empty name/bid/accounts, a zero USCC or a zero account; a member delegating to itself.
    error ConsortiumInvalidMember(bytes32 uscc);
    error ConsortiumProposalNotFound(uint256 id);
    error ConsortiumProposalExpired(uint256 id, uint64 expiresAt);
    error ConsortiumProposalAlreadyExecuted(uint256 id);
    error ConsortiumAlreadyApproved(uint256 id, bytes32 uscc);
    error ConsortiumInsufficientApprovals(uint256 id, uint16 approvals, uint16 required);
    /// The action would leave the consortium without an Active admin.
    error ConsortiumLastAdmin(bytes32 uscc);
    /// An SM2 public key that is not 64 bytes (x || y), or one already registered (to any member, ever).
    error ConsortiumInvalidSm2Key(bytes32 uscc);

    event MemberAdmitted(bytes32 indexed uscc, string name, string bid, uint64 roles, address[] accounts);
    event MemberRolesChanged(bytes32 indexed uscc, uint64 oldRoles, uint64 newRoles);
    event MemberStatusChanged(bytes32 indexed uscc, uint8 oldStatus, uint8 newStatus);
    event MemberAccountAdded(bytes32 indexed uscc, address indexed account);
    event MemberKeyRotated(
        bytes32 indexed uscc, address indexed oldAccount, address indexed newAccount, string newBid
    );
    /**
     * The member's SM2 signing key (GB/T 32918, 64 bytes x || y) from this block's timestamp on; the key it
     * replaces (if any) stopped being valid at the same timestamp. Emitted at admission (when the admission
     * carries a key) and by RotateSm2Key. `bid` is the member's BID after the change.
     */
    event MemberSm2KeySet(bytes32 indexed uscc, bytes32 indexed keyHash, bytes key, string bid);
    event ThresholdChanged(uint8 oldThreshold, uint8 newThreshold);
    event ProposalCreated(
        uint256 indexed id, uint8 indexed action, bytes32 indexed uscc, bytes32 proposer, uint64 expiresAt, bytes data
    );
    event ProposalApproved(uint256 indexed id, bytes32 indexed approver, uint16 approvals);
    event ProposalExecuted(uint256 indexed id, bytes32 indexed executor);
    event RevokerDelegateSet(bytes32 indexed issuer, bytes32 indexed delegate, bool allowed);

    /**
     * @notice Proposes an action on a member (or on the consortium for SetThreshold, with `uscc` = 0).
     * @dev Requirements: the caller is an account of an Active member with ADMIN_ROLE; `action` is 1..9;
     * `data` is the action's abi-encoded payload; the action's preconditions hold now (they are checked
     * again by {execute}). The proposer's member approves automatically.
     * Emits {ProposalCreated} and {ProposalApproved}.
     * @return id The new proposal's id (ids start at 1).
     */
    function propose(uint8 action, bytes32 uscc, bytes calldata data) external returns (uint256 id);

    /**
     * @notice Approves a pending proposal on behalf of the caller's member (one approval per member).
     * @dev Requirements: admin caller; the proposal exists, is not executed and not expired; the caller's
     * member has not approved it yet. Emits {ProposalApproved}.
     */
    function approve(uint256 id) external;

    /**
     * @notice Executes a proposal that has gathered {requiredApprovals} approvals of members that are
     * still Active admins.
     * @dev Requirements: admin caller; the proposal exists, is not executed and not expired; enough
     * approvals; the action's preconditions still hold. Emits the action's event(s), then {ProposalExecuted}.
     */
    function execute(uint256 id) external;

    /**
     * @notice Lets (or stops letting) `delegateUscc` revoke and suspend the caller's member's documents.
     * @dev Requirements: the caller is an account of an Active member with ISSUER_ROLE; the delegate is a
     * known member other than the caller's. The delegate must hold REVOKER_ROLE when it acts.
     * Emits {RevokerDelegateSet}.
     */
    function setRevokerDelegate(bytes32 delegateUscc, bool allowed) external;

    /// @notice min(threshold, number of Active members with ADMIN_ROLE).
    function requiredApprovals() external view returns (uint16);

    /// @notice The member (USCC) owning `account`, or 0.
    function memberOf(address account) external view returns (bytes32);

    /// @notice A member's record; all zero/empty for an unknown USCC.
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
        );

    /// @notice The member's current accounts (rotated-out accounts are not listed).
    function memberAccounts(bytes32 uscc) external view returns (address[] memory);
    /// @notice The member's current SM2 public key (64 bytes x || y), empty if it has none.
    function memberSm2Key(bytes32 uscc) external view returns (bytes memory);
    /**
     * @notice Whose SM2 key `keyHash` (keccak256 of the 64-byte key) is and when it was valid: from `since`
     * to `until` (block timestamps; `until` = 0 while it is the member's current key). All zero if unknown.
     */
    function sm2KeyRecord(bytes32 keyHash) external view returns (bytes32 uscc, uint64 since, uint64 until);

    /// @notice Number of members ever admitted (removed ones included).
    function memberCount() external view returns (uint256);

    /// @notice The USCC of the `index`-th admitted member (0-based, admission order).
    function memberAt(uint256 index) external view returns (bytes32);

    /// @notice True if `account` belongs to an Active member holding every bit of `role` (role != 0).
    function hasRole(address account, uint64 role) external view returns (bool);

    /**
     * @notice True if `account` may revoke, suspend, reinstate or supersede documents of `issuerUscc`:
     * its member is Active and either is the issuer holding ISSUER_ROLE or REVOKER_ROLE, or is a delegate
     * of the issuer holding REVOKER_ROLE.
     */
    function canRevokeFor(address account, bytes32 issuerUscc) external view returns (bool);

    /// @notice True if `issuer` has delegated revocation to `delegate`.
    function isRevokerDelegate(bytes32 issuer, bytes32 delegate) external view returns (bool);

    function threshold() external view returns (uint8);

    function proposalTtl() external view returns (uint64);

    function proposalCount() external view returns (uint256);

    /// @notice A proposal; all zero for an unknown id. `approvals` counts every member that approved.
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
        );

    function hasApproved(uint256 id, bytes32 uscc) external view returns (bool);
}
