"""A per-document subset of the CJK font, built in milliseconds from a copy parsed once per process.

fpdf2 parses the font file it is given for every document and subsets it with fontTools when writing the
PDF; for WenQuanYi Micro Hei (49,531 glyphs) that is 2-5 s per PDF on this machine, nearly all of it
decompiling the glyph and character-map tables. Here the face is read once (`_Face`, under a lock: fontTools
expands glyphs lazily), and each document gets a small TrueType font holding only the glyphs of the
characters it prints (plus ASCII), written by fontTools' FontBuilder with the face's metrics and names;
fpdf2 then embeds a subset of that, as usual.

    >>> with document_font(CJK_FONT, ["营业执照"]) as path:                    # doctest: +SKIP
    ...     pdf.add_font("cjk", fname=str(path))
"""

from __future__ import annotations

import string
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from fontTools.fontBuilder import FontBuilder
from fontTools.ttLib import TTFont

__all__ = ["document_font"]

_LOCK = threading.Lock()


@cache
def _face(path: Path) -> tuple[TTFont, dict[int, str]]:
    font = TTFont(str(path), fontNumber=0)  # tables on first use, glyphs expanded when asked for
    return font, dict(font.getBestCmap())


def _closure(glyf: Any, names: set[str]) -> set[str]:
    """``names`` and every component of the composite glyphs among them."""
    todo, seen = list(names), set(names)
    while todo:
        glyph = glyf[todo.pop()]
        if glyph.isComposite():
            for component in glyph.getComponentNames(glyf):
                if component not in seen:
                    seen.add(component)
                    todo.append(component)
    return seen


def _build(path: Path, texts: Iterable[str]) -> bytes:
    chars = {ord(c) for text in texts for c in text} | {ord(c) for c in string.printable}
    with _LOCK:
        face, cmap = _face(path)
        cmap = {c: cmap[c] for c in chars if c in cmap}
        glyf, hmtx = face["glyf"], face["hmtx"]
        order = [".notdef", *sorted(_closure(glyf, set(cmap.values())) - {".notdef"})]
        glyphs = {name: glyf[name] for name in order}
        metrics = {name: hmtx[name] for name in order}
        head, hhea, os2, post = face["head"], face["hhea"], face["OS/2"], face["post"]
        names = face["name"]
        builder = FontBuilder(head.unitsPerEm, isTTF=True)
        builder.setupGlyphOrder(order)
        builder.setupCharacterMap(cmap)
        builder.setupGlyf(glyphs)
        builder.setupHorizontalMetrics(metrics)
        builder.setupHorizontalHeader(ascent=hhea.ascent, descent=hhea.descent, lineGap=hhea.lineGap)
        builder.setupNameTable({"familyName": names.getBestFamilyName() or "CJK",
                                "styleName": names.getBestSubFamilyName() or "Regular",
                                "fullName": names.getBestFullName() or "CJK"})
        builder.setupOS2(usWeightClass=os2.usWeightClass, fsType=os2.fsType, sTypoAscender=os2.sTypoAscender,
                         sTypoDescender=os2.sTypoDescender, sTypoLineGap=os2.sTypoLineGap,
                         usWinAscent=os2.usWinAscent, usWinDescent=os2.usWinDescent,
                         sCapHeight=getattr(os2, "sCapHeight", hhea.ascent),
                         sxHeight=getattr(os2, "sxHeight", 0), yStrikeoutSize=os2.yStrikeoutSize,
                         yStrikeoutPosition=os2.yStrikeoutPosition)
        builder.setupPost(isFixedPitch=post.isFixedPitch, italicAngle=post.italicAngle,
                          underlinePosition=post.underlinePosition, underlineThickness=post.underlineThickness)
        builder.font["head"].xMin, builder.font["head"].yMin = head.xMin, head.yMin
        builder.font["head"].xMax, builder.font["head"].yMax = head.xMax, head.yMax
        with tempfile.SpooledTemporaryFile() as out:
            builder.save(out)
            out.seek(0)
            return bytes(out.read())


@contextmanager
def document_font(path: Path, texts: Iterable[str]) -> Iterator[Path]:
    """A temporary .ttf with the glyphs of ``texts`` (and ASCII), alive inside the ``with`` block."""
    data = _build(path, texts)
    with tempfile.TemporaryDirectory(prefix="lianzheng-font-") as folder:
        target = Path(folder) / "cjk.ttf"
        target.write_bytes(data)
        yield target
