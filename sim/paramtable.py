"""The parameter table of docs/model.md, generated from the metadata of the config dataclasses.

Every field of `sim.config.RunConfig` (and of the dataclasses nested in it) carries `metadata` with its
source, range, choices, length and meaning (see `sim.config.spec`). `parameter_table()` walks them in
declaration order and renders one Markdown row per leaf field, named by its dotted path
(`levers.training.cost_per_place`), so the documentation cannot drift from the code.

    python -m sim.paramtable                        # print the table
    python -m sim.paramtable --write docs/model.md  # rewrite the table between the marker lines
    python -m sim.paramtable --check docs/model.md  # exit 1 if the table there is out of date
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from .config import RunConfig, range_text

BEGIN = "<!-- PARAMETERS:BEGIN -->"
END = "<!-- PARAMETERS:END -->"
HEADER = ("parameter", "default", "allowed", "meaning", "source")



@dataclass(frozen=True)
class ParamRow:
    """One leaf field of RunConfig with its metadata."""

    name: str
    type: Any
    default: Any
    meta: dict


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def walk(cls: type = RunConfig, prefix: str = "") -> list[ParamRow]:
    """All leaf fields of `cls`, recursively through nested dataclasses, in declaration order."""
    hints = get_type_hints(cls)
    rows: list[ParamRow] = []
    for f in dataclasses.fields(cls):
        name = f"{prefix}{f.name}"
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            rows.extend(walk(tp, name + "."))
        else:
            rows.append(ParamRow(name, tp, _default(f), dict(f.metadata)))
    return rows


def _base_type(tp: Any) -> tuple[Any, bool, bool]:
    """(element type, is_list, is_optional)."""
    optional = False
    if get_origin(tp) is not None and type(None) in get_args(tp):
        optional = True
        (tp,) = [a for a in get_args(tp) if a is not type(None)]
    if get_origin(tp) is list:
        (elem,) = get_args(tp)
        return elem, True, optional
    return tp, False, optional


def is_numeric(row: ParamRow) -> bool:
    """True for int and float fields and lists of them (not bool)."""
    elem, _, _ = _base_type(row.type)
    return elem in (int, float)


def fmt_number(v: Any) -> str:
    """Compact, exact rendering of a number: 5700000 for 5.7e6, 0.117, 2e-05."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return repr(v)
    return str(v)


def fmt_default(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {fmt_default(x)}" for k, x in v.items()) + "}"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_number(x) for x in v) + "]"
    if isinstance(v, str):
        return f'"{v}"' if v == "" else v
    return fmt_number(v)


def _range(kind: str, m: dict) -> str:
    return range_text(m, kind, fmt_number, "≥", "≤")


def fmt_allowed(row: ParamRow) -> str:
    """What values the config checks accept (single-field checks of sim.config)."""
    if get_origin(row.type) is dict:
        _, inner = get_args(row.type)
        what = fmt_allowed(ParamRow(row.name, inner, None, row.meta))
        key = "config key" if row.name.endswith("structural") else "date YYYY-MM"
        return f"mapping of {key} to {what}"
    elem, is_list, optional = _base_type(row.type)
    m = row.meta
    if elem is bool:
        text = "true or false"
    elif elem is str:
        text = "one of " + ", ".join(m["choices"]) if m.get("choices") else "text"
    elif elem in (int, float):
        kind = "integer" if elem is int else "number"
        if is_list:
            n = m.get("length")
            count = f"{n} " if n is not None else ""
            bounds = _range("", m).strip()
            text = f"list of {count}{kind}s" + (f", each {bounds}" if bounds else "")
        else:
            text = _range(kind, m)
    else:  # pragma: no cover - guarded by tests: every leaf type is known
        raise TypeError(f"unsupported type {row.type} at {row.name}")
    if optional:
        text += ", or null"
    return text


def meaning(row: ParamRow) -> str:
    return row.meta.get("doc", "")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("*", "\\*").replace("\n", " ")


def assumption_range(name: str) -> str:
    """`; range LO-HI (why)` for a numeric assumption a sensitivity study can vary (config.ASSUMPTION_RANGES)."""
    from .config import ASSUMPTION_RANGES

    if name not in ASSUMPTION_RANGES:
        return ""
    lo, hi, why = ASSUMPTION_RANGES[name]
    return f"; range {lo:g}-{hi:g}, drawn in the calibration ensemble and varied by `inputs=assumptions` ({why})"


def parameter_table() -> str:
    """The Markdown table of every RunConfig parameter: default, allowed values, meaning, source."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in walk():
        cells = [f"`{row.name}`", fmt_default(row.default), fmt_allowed(row), meaning(row),
                 row.meta.get("source", "") + assumption_range(row.name)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def extract_table(text: str) -> str:
    """The text between the marker lines (exclusive), or a ValueError naming what is missing."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"expected exactly one {BEGIN} and one {END} line")
    start = text.index(BEGIN) + len(BEGIN)
    stop = text.index(END)
    if stop < start:
        raise ValueError(f"{END} comes before {BEGIN}")
    return text[start:stop].strip("\n") + "\n"


def replace_table(text: str, table: str) -> str:
    """`text` with the part between the markers replaced by `table`."""
    extract_table(text)  # validates the markers
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table.rstrip()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.paramtable", description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="FILE", help="rewrite the table between the markers in FILE")
    group.add_argument("--check", metavar="FILE", help="exit 1 if the table in FILE is out of date")
    args = ap.parse_args(argv)
    table = parameter_table()
    path = Path(args.write or args.check) if (args.write or args.check) else None
    if path is None:
        sys.stdout.write(table)
        return 0
    try:
        text = path.read_text(encoding="utf-8")
        current = extract_table(text)
    except (OSError, ValueError) as exc:
        print(f"paramtable: {path}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if current != table:
            print(f"paramtable: {path}: parameter table is out of date; run "
                  f"`python -m sim.paramtable --write {path}`", file=sys.stderr)
            return 1
        return 0
    new = replace_table(text, table)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
