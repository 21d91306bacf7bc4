"""The chain layer: the devnet, web3 backends, contract clients, blocks and logs (no certificate semantics)."""

from chain._aiohttp_deferred import install as _defer_aiohttp
from chain._bls_deferred import install as _defer_bls

# before any module of this package imports web3 (chain/_bls_deferred.py and chain/_aiohttp_deferred.py say why)
_defer_bls()
_defer_aiohttp()
