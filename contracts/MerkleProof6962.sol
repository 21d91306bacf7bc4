// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/**
 * @title MerkleProof6962
 * @notice Inclusion proofs of RFC 6962 / RFC 9162 Merkle trees with SHA-256:
 * leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right). The 0x00/0x01 prefixes keep a
 * leaf from being passed off as an interior node (second-preimage resistance, RFC 6962 §2.1).
 */
library MerkleProof6962 {
    /// RFC 6962 §2.1 leaf hash of a 32-byte entry.
    function leafHash(bytes32 entry) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), entry));
    }

    /// RFC 6962 §2.1 interior node hash.
    function nodeHash(bytes32 left, bytes32 right) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), left, right));
    }

    /**
     * @notice RFC 9162 §2.1.3.2: verifies that `entry` is the leaf at `index` of the tree of `size` leaves
     * whose root is `root`, given the audit path `proof` (bottom to top).
     */
    function verify(bytes32 entry, uint256 index, uint256 size, bytes32[] calldata proof, bytes32 root)
        internal
        pure
        returns (bool)
    {
        if (index >= size) return false;
        uint256 fn = index;
        uint256 sn = size - 1;
        bytes32 r = leafHash(entry);
        for (uint256 i = 0; i < proof.length; ++i) {
            if (sn == 0) return false;
            bytes32 p = proof[i];
            if (fn & 1 == 1 || fn == sn) {
                r = nodeHash(p, r);
                if (fn & 1 == 0) {
                    // fn == sn and fn is a left child: climb past the levels where it has no sibling
                    while (fn & 1 == 0 && fn != 0) {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                r = nodeHash(r, p);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && r == root;
    }
}
