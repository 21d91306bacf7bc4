"""Generate the Besu QBFT example: genesis.json and permissions_config.toml (documentation, not run by tests).

    .venv/bin/python hardhat-free-devnet/besu/make_genesis.py            # rewrite the committed example files
    .venv/bin/python hardhat-free-devnet/besu/make_genesis.py --check    # fail if they differ from what it generates

The four validator keys and the agency accounts of the example are DERIVED FROM PUBLIC SEEDS: anyone can
recompute their private keys. They exist so the committed files are real, self-consistent and reproducible.
A production network generates its own node keys (Besu writes `<data-path>/key` on first start;
`besu --data-path=... public-key export` prints the public key) and passes them in:

    make_genesis.py --node-keys keys.txt --hosts 10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4 --accounts agencies.txt --out DIR

where keys.txt holds one node public key per line (128 hex digits, as exported by Besu) and
agencies.txt one agency account address per line (from the registry's member list).

QBFT extraData (Besu docs, "Configure QBFT consensus", Extra data):
RLP([32 bytes vanity, [validator addresses], no vote, round 0, no seals]) -- encoded below with `rlp`
and checked against the worked example in the Besu documentation before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import rlp
from eth_keys.datatypes import PrivateKey
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

HERE = Path(__file__).resolve().parent

CHAIN_ID = 2300
P2P_PORT = 30303
BLOCK_PERIOD_SECONDS = 2
REQUEST_TIMEOUT_SECONDS = 4  # Besu docs: start at 2 x blockperiodseconds, then tune
EPOCH_LENGTH = 30000
GAS_LIMIT = 30_000_000  # the same block gas limit as the anvil devnet, so gas behaves the same in dev and prod
# "Istanbul block identification" constant required in QBFT genesis files.
QBFT_MIX_HASH = "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365"
GENESIS_TIMESTAMP = "0x67d3a100"  # 2025-03-14T00:00:00Z: fixed, so the genesis hash is reproducible

# IP addresses: host names in enode URLs need Besu's early-access --Xdns-enabled option.
DEMO_HOSTS = ["10.230.0.11", "10.230.0.12", "10.230.0.13", "10.230.0.14"]
DEMO_AGENCY_ACCOUNTS = 9  # one per seed agency in seeds/consortium.yaml

# Worked example from the Besu QBFT documentation (validators in the order given there).
_DOC_VALIDATORS = ["0x4592c8e45706cc08b8f44b11e43cba0cfc5892cb", "0x06e23768a0f59cf365e18c2e0c89e151bcdedc70",
                   "0xc5327f96ee02d7bcbc1bf1236b8c15148971e1de", "0xab5e7f4061c605820d3744227eed91ff8e2c8908"]
_DOC_EXTRA_DATA = ("0xf87aa00000000000000000000000000000000000000000000000000000000000000000f854944592c8e45706cc08b8"
                   "f44b11e43cba0cfc5892cb9406e23768a0f59cf365e18c2e0c89e151bcdedc7094c5327f96ee02d7bcbc1bf1236b8c"
                   "15148971e1de94ab5e7f4061c605820d3744227eed91ff8e2c8908c080c0")


def qbft_extra_data(validators: list[str]) -> str:
    """RLP([vanity, validators, votes, round, seals]) for a genesis block: no vote, round 0, no seals."""
    vanity = b"\x00" * 32
    addresses = [bytes.fromhex(v.removeprefix("0x")) for v in validators]
    if any(len(a) != 20 for a in addresses):
        raise ValueError(f"validator addresses must be 20 bytes: {validators}")
    # Round 0 is the empty byte string (0x80) and "no vote" the empty list (0xc0), as in the Besu example.
    encoded: bytes = rlp.encode([vanity, addresses, [], b"", []])
    return "0x" + encoded.hex()


def demo_node_public_keys() -> list[str]:
    """Node public keys (64 bytes, hex) of the four demo validators, derived from public seeds."""
    return [PrivateKey(keccak(text=f"lianzheng/besu-demo/validator/{i}")).public_key.to_hex()[2:]
            for i in range(1, 5)]


def demo_agency_accounts() -> list[str]:
    return [str(PrivateKey(keccak(text=f"lianzheng/besu-demo/agency/{i}")).public_key.to_checksum_address())
            for i in range(1, DEMO_AGENCY_ACCOUNTS + 1)]


def node_address(public_key_hex: str) -> str:
    """Besu: the node (= validator) address is the last 20 bytes of keccak256(public key)."""
    public = bytes.fromhex(public_key_hex.removeprefix("0x"))
    if len(public) != 64:
        raise ValueError(f"a node public key has 64 bytes (128 hex digits), got {len(public)} bytes")
    return to_checksum_address(keccak(public)[-20:])


def genesis(validators: list[str]) -> dict[str, object]:
    return {
        "config": {
            "chainId": CHAIN_ID,
            "berlinBlock": 0,
            "londonBlock": 0,
            # Free gas (Besu docs, "Configure free gas networks"): with London, zeroBaseFee on every node
            # plus min-gas-price=0 in config.toml. contractSizeLimit is left at the default 24576 bytes.
            "zeroBaseFee": True,
            "qbft": {
                "blockperiodseconds": BLOCK_PERIOD_SECONDS,
                "epochlength": EPOCH_LENGTH,
                "requesttimeoutseconds": REQUEST_TIMEOUT_SECONDS,
            },
        },
        "nonce": "0x0",
        "timestamp": GENESIS_TIMESTAMP,
        "extraData": qbft_extra_data(validators),
        "gasLimit": hex(GAS_LIMIT),
        "difficulty": "0x1",
        "mixHash": QBFT_MIX_HASH,
        "coinbase": "0x0000000000000000000000000000000000000000",
        "alloc": {},
        "number": "0x0",
        "gasUsed": "0x0",
        "parentHash": "0x" + "00" * 32,
    }


def permissions_config(node_public_keys: list[str], hosts: list[str], accounts: list[str]) -> str:
    enodes = [f"enode://{key}@{host}:{P2P_PORT}" for key, host in zip(node_public_keys, hosts, strict=True)]
    lines = [
        "# Local permissioning (Besu: --permissions-*-config-file-enabled). Generated by make_genesis.py.",
        "# Every node gets the SAME file: Besu checks the remote end of each connection against its own copy,",
        "# and each node filters the transactions it accepts and mines against its own accounts allowlist.",
        "# Enode URLs carry IP addresses: host names would need Besu's early-access --Xdns-enabled option.",
        "",
        "nodes-allowlist=[",
        *[f'  "{e}",' for e in enodes],
        "]",
        "",
        "# Agency accounts (one per consortium member; add one with perm_addAccountsToAllowlist on every node,",
        "# or edit this file everywhere and call perm_reloadPermissionsFromFile).",
        "accounts-allowlist=[",
        *[f'  "{a}",' for a in accounts],
        "]",
    ]
    return "\n".join(lines) + "\n"


CONFIG_TEMPLATE = """\
# Besu node configuration for the Lianzheng QBFT consortium (`besu --config-file=config.toml`).
# One template for every node; only the lines marked PER NODE differ. Generated by make_genesis.py.
# Option names are Besu's command-line options without the leading `--`.

# -- chain ---------------------------------------------------------------------------------------------
genesis-file="/etc/besu/genesis.json"
data-path="/var/lib/besu"            # PER NODE (its own disk); holds the node key file `key`
sync-mode="FULL"                     # every block executed locally: receipts and logs from genesis on
# data-storage-format defaults to BONSAI (state at recent blocks only). The audit replays logs, which every
# storage format keeps; run one extra RPC node with data-storage-format="FOREST" if state queries at old
# block numbers (eth_call at block N) are ever needed.

# -- p2p: a closed network -----------------------------------------------------------------------------
p2p-host="{host}"                    # PER NODE
p2p-port={p2p_port}
bootnodes=[
{bootnodes}
]

# -- permissioning: local allowlists (contract-based permissioning is deprecated since Besu 24.12) -------
permissions-nodes-config-file-enabled=true
permissions-nodes-config-file="/etc/besu/permissions_config.toml"
permissions-accounts-config-file-enabled=true
permissions-accounts-config-file="/etc/besu/permissions_config.toml"

# -- free gas: zeroBaseFee in genesis.json, and no minimum price on any node ------------------------------
# (a node with a non-zero minimum silently drops zero-priced transactions)
min-gas-price=0
tx-pool-min-gas-price=0

# -- JSON-RPC for the Lianzheng API (LIANZHENG_RPC_URLS lists several nodes' http://<host>:8545) ----------
rpc-http-enabled=true
rpc-http-host="0.0.0.0"
rpc-http-port=8545
rpc-http-api=["ETH","NET","WEB3"]    # read and send only: no ADMIN/PERM/QBFT on the application port
host-allowlist=["localhost","127.0.0.1","{host}"]  # PER NODE; firewall 8545 to the API hosts
revert-reason-enabled=true           # custom-error data in receipts, decoded by chain/ into domain errors
# rpc-max-logs-range stays at Besu's default (5000 blocks): chain/logs.py pages eth_getLogs in 5000-block
# chunks.

# -- operator APIs on the node itself only (ssh in, then talk to ws://127.0.0.1:8546) ---------------------
rpc-ws-enabled=true
rpc-ws-host="127.0.0.1"
rpc-ws-port=8546
rpc-ws-api=["ETH","NET","ADMIN","PERM","QBFT","TXPOOL"]

# -- monitoring -----------------------------------------------------------------------------------------
metrics-enabled=true
metrics-host="0.0.0.0"
metrics-port=9545
"""


def config_toml(enodes: list[str], host: str) -> str:
    bootnodes = ",\n".join(f'  "{e}"' for e in enodes)
    return CONFIG_TEMPLATE.format(host=host, p2p_port=P2P_PORT, bootnodes=bootnodes)


def render(node_public_keys: list[str], hosts: list[str], accounts: list[str]) -> dict[str, str]:
    if qbft_extra_data(_DOC_VALIDATORS) != _DOC_EXTRA_DATA:
        raise AssertionError("QBFT extraData encoding does not reproduce the Besu documentation example")
    if len(node_public_keys) < 4:
        raise ValueError(f"QBFT needs at least 4 validators to tolerate one faulty node, got {len(node_public_keys)}")
    # Besu docs: list the initial validators in ascending order.
    validators = sorted((node_address(k) for k in node_public_keys), key=str.lower)
    enodes = [f"enode://{k}@{h}:{P2P_PORT}" for k, h in zip(node_public_keys, hosts, strict=True)]
    return {
        "genesis.json": json.dumps(genesis(validators), indent=2) + "\n",
        "config.toml": config_toml(enodes, hosts[0]),
        "permissions_config.toml": permissions_config(node_public_keys, hosts, accounts),
        "validators.json": json.dumps(
            [{"host": h, "enode": f"enode://{k}@{h}:{P2P_PORT}", "address": node_address(k)}
             for k, h in zip(node_public_keys, hosts, strict=True)], indent=2) + "\n",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--node-keys", type=Path, help="file: one node public key (128 hex digits) per line")
    parser.add_argument("--hosts", help="comma-separated IP addresses of the nodes, in the same order")
    parser.add_argument("--accounts", type=Path, help="file: one agency account address per line")
    parser.add_argument("--out", type=Path, default=HERE, help="directory to write to (default: next to this file)")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out instead of writing")
    args = parser.parse_args(argv)

    node_keys = _lines(args.node_keys) if args.node_keys else demo_node_public_keys()
    hosts = args.hosts.split(",") if args.hosts else DEMO_HOSTS
    accounts = [str(to_checksum_address(a)) for a in _lines(args.accounts)] if args.accounts else demo_agency_accounts()
    if len(hosts) != len(node_keys):
        parser.error(f"{len(node_keys)} node keys but {len(hosts)} hosts")

    files = render(node_keys, hosts, accounts)
    stale = [name for name, text in files.items()
             if not (args.out / name).exists() or (args.out / name).read_text() != text]
    if args.check:
        if stale:
            print(f"out of date: {', '.join(stale)}; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text)
        print(args.out / name)
    return 0


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


if __name__ == "__main__":
    sys.exit(main())
