"""The kinds of e-seal (印章类别) an agency may register: code -> name (GB/T 38540 leaves the set to the operator).

A module of its own so that the command line lists them in its help without loading the seal service.

    >>> CATEGORIES["permit"]
    '行政许可专用章'
"""

from __future__ import annotations

__all__ = ["CATEGORIES"]

CATEGORIES = {"official": "公章", "business": "业务专用章", "permit": "行政许可专用章", "contract": "合同专用章",
              "finance": "财务专用章", "certificate": "证照专用章"}
