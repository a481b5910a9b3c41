"""The Chinese font for lang=zh: Noto Sans SC from the PyPI package `justmytype-intl-cjk`.

The package ships Noto Sans SC as one variable font whose default instance is Thin (weight 100);
matplotlib cannot choose an instance of a variable font, so the first use writes a static Regular
(weight 400) instance, subset to GB 2312 (6763 hanzi) plus Latin, punctuation and CJK symbols, into
matplotlib's cache folder (about 5 s once, 2 MB). Later uses load the cached file. Nothing is
fetched from the network; the font is found through the installed package (importlib.resources),
never through a fixed path.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..errors import DataError

FONT_PACKAGE = "justmytype_intl_cjk"
FONT_RESOURCE = ("fonts", "ofl", "notosanssc", "NotoSansSC[wght].ttf")
FAMILY = "Noto Sans SC Skillsim"  # renamed so it never collides with a system-wide Noto Sans SC
WEIGHT = 400
LATIN_FALLBACK = "DejaVu Sans"  # ships with matplotlib
CACHE_VERSION = "1"

# Latin and Greek, general punctuation, super/subscripts, currency, letterlike, arrows, maths,
# CJK symbols and punctuation, fullwidth forms; plus GB 2312 below.
_RANGES = ((0x20, 0x250), (0x370, 0x400), (0x2000, 0x20C0), (0x2100, 0x2200), (0x2190, 0x2200),
           (0x2200, 0x2300), (0x2460, 0x2500), (0x3000, 0x3040), (0xFE30, 0xFE50), (0xFF00, 0xFFF0))


def source_font() -> Path:
    """Path of the variable Noto Sans SC inside the installed package; DataError if not installed."""
    try:
        res = resources.files(FONT_PACKAGE).joinpath(*FONT_RESOURCE)
    except ModuleNotFoundError:
        raise DataError("lang=zh needs the Chinese font package justmytype-intl-cjk; "
                        "install it with the README's set-up command (pip install -e .)") from None
    path = Path(str(res))
    if not path.is_file():
        raise DataError(f"Chinese font missing from the package {FONT_PACKAGE}: {path}; reinstall it")
    return path


def _codepoints() -> set[int]:
    cps: set[int] = set()
    for lo, hi in _RANGES:
        cps.update(range(lo, hi))
    for hi in range(0xA1, 0xF8):
        for lo in range(0xA1, 0xFF):
            try:
                cps.add(ord(bytes((hi, lo)).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    return cps


def _cache_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_cachedir()) / "skillsim-fonts"


def _build_static(src: Path, dest: Path) -> None:
    """Write a static Regular instance of the variable font, subset to the code points above."""
    from fontTools import subset
    from fontTools.ttLib import TTFont
    from fontTools.varLib import instancer

    font = TTFont(str(src))
    opts = subset.Options()
    opts.layout_features = ["kern"]
    opts.name_IDs = ["*"]
    opts.notdef_outline = True
    opts.drop_tables += ["GSUB", "GPOS", "GDEF", "HVAR", "VVAR", "MVAR", "STAT"]
    sub = subset.Subsetter(opts)
    sub.populate(unicodes=_codepoints())
    sub.subset(font)
    instancer.instantiateVariableFont(font, {"wght": WEIGHT}, inplace=True, optimize=False)
    names = font["name"]
    for rec in list(names.names):
        if rec.nameID in (1, 4, 16):
            names.setName(FAMILY, rec.nameID, rec.platformID, rec.platEncID, rec.langID)
        elif rec.nameID in (2, 17):
            names.setName("Regular", rec.nameID, rec.platformID, rec.platEncID, rec.langID)
        elif rec.nameID == 6:
            names.setName(FAMILY.replace(" ", "") + "-Regular", rec.nameID, rec.platformID, rec.platEncID,
                          rec.langID)
    font["OS/2"].usWeightClass = WEIGHT
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        font.save(str(tmp))
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def static_font_path() -> Path:
    """The cached static Regular instance, built on first use."""
    src = source_font()
    st = src.stat()
    key = hashlib.sha256(f"{CACHE_VERSION}|{src}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    dest = _cache_dir() / f"NotoSansSC-Regular-gb2312-{key}.ttf"
    if not dest.is_file():
        _build_static(src, dest)
    return dest


@lru_cache(maxsize=1)
def register_cjk_font() -> str:
    """Register the Chinese font with matplotlib once per process; returns its family name."""
    from matplotlib import font_manager

    path = static_font_path()
    font_manager.fontManager.addfont(str(path))
    return FAMILY


def missing_chars(text: str) -> set[str]:
    """Characters of `text` that the Chinese font lacks (for checks and tests)."""
    cmap = _cmap(str(static_font_path()))
    return {c for c in text if not c.isspace() and ord(c) not in cmap}


@lru_cache(maxsize=2)
def _cmap(path: str) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    return frozenset(TTFont(path, lazy=True).getBestCmap())
