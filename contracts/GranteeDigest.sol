// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/**
 * @title GranteeDigest
 * @notice The on-chain form of a grant's agency grantee (registry/holders/grants.py):
 * SHA-256("lianzheng/grantee/agency/v1:" + USCC), the USCC as its 18 ASCII characters — i.e. the first 18 bytes
 * of the zero-padded bytes32 member key `IConsortiumRegistry.memberOf` returns. The usage ledger compares it with
 * `IGrantRegistry.grantOf(...).granteeDigest` to check that the sending agency is the grantee.
 */
library GranteeDigest {
    function agency(bytes32 usccKey) internal pure returns (bytes32) {
        return sha256(abi.encodePacked("lianzheng/grantee/agency/v1:", bytes18(usccKey)));
    }
}
