"""The chain layer: the devnet, web3 backends, contract clients, blocks and logs (no certificate semantics)."""

from chain._bls_deferred import install as _defer_bls

_defer_bls()  # before any module of this package imports web3 (chain/_bls_deferred.py says why)
