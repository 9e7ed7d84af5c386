"""Pure carbon-ledger integrity: interval records, canonical form, hash chain.

Role: the record types the store keeps in its append-only ledger tables, and the functions that
make the ledger tamper-evident. May import only ``dispatch.types``, numpy, pandas, hashlib and
json; no I/O, no wall clock.

Integrity scheme:

- Values are quantised to ``DECIMALS`` decimals (kWh to the mWh, kg to the mg) when a record is
  built, and the canonical form is JSON with sorted keys, no spaces and every float written
  with exactly ``DECIMALS`` decimals (``-0`` written as ``0``). ``records_frame`` hands reports
  the same quantised values, so what is hashed is what is added up.
- ``inputs_hash = sha256(canonical(inputs))``: the interval, measured flows, intensity value and
  source, and method version.
- ``record_hash = sha256(prev_hash + canonical(record))`` where the canonical record holds every
  field except ``prev_hash`` and ``record_hash``; the first record's ``prev_hash`` is
  ``GENESIS``.
- Record formats: a record with ``factor_ref`` (the reference of the grid factor of record,
  ``dispatch.carbon.factors.reference``: table key, value and the SHA-256 of the table entry)
  is format 3; ``factor_ref`` and ``provenance`` are input fields (so in both hashes). A
  record with ``provenance`` (``PROVENANCE``: where its activity data comes from) but no
  ``factor_ref`` is format 2, written before factor references; one with neither is format 1,
  written before provenance. The canonical forms of formats 1 and 2 leave the missing fields
  out, so their hashes are those they were written with. Blanking a field of a newer record
  changes its canonical form: it no longer verifies; a format-3 record must have a
  provenance.
- ``verify`` finds the first record whose inputs, record hash or link to its predecessor does
  not check out. Removing rows from the end leaves a valid shorter chain: pass the last known
  head (``expected_head``), kept apart from the ledger, to detect that too.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _quote
from operator import attrgetter, itemgetter
from typing import NamedTuple

import numpy as np
import pandas as pd

from dispatch.types import InputError

DECIMALS = 6
GENESIS = "0" * 64
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
#: Where an interval's activity data comes from, best first: the daemon's own complete
#: cycle readings; metered history brought in by ``dispatch import-history`` (with the grid
#: flow); imported history without a metered grid flow (taken as load - PV). ``""`` is a
#: format-1 record, written before provenance was recorded.
PROVENANCE = ("measured", "imported", "estimated")


class IntervalRecord(NamedTuple):
    """One ledger row: an interval's flows, intensity and emissions, and its hashes.

    Energies in kWh, intensity in g CO2/kWh, emissions in kg CO2; the meaning of each field
    is that of the same column in ``dispatch.carbon.accounting.interval_accounting``. Times
    are UTC text ``YYYY-MM-DDTHH:MM:SSZ``; ``end_utc`` is exclusive. An immutable named tuple
    (cheap to build by the tens of thousands); ``record._replace(...)`` makes an edited copy.
    """

    start_utc: str
    end_utc: str
    load_kwh: float
    pv_kwh: float
    curtail_kwh: float
    import_kwh: float
    export_kwh: float
    charge_kwh: float
    discharge_kwh: float
    ci_g_per_kwh: float
    ci_source: str
    method_version: str
    charge_grid_kwh: float
    pv_direct_kwh: float
    nobatt_import_kwh: float
    nobatt_export_kwh: float
    location_kg_co2: float
    nobatt_kg_co2: float
    nopv_kg_co2: float
    avoided_pv_kg_co2: float
    avoided_battery_kg_co2: float
    charge_grid_kg_co2: float
    provenance: str = ""
    factor_ref: str = ""
    inputs_hash: str = ""
    prev_hash: str = ""
    record_hash: str = ""


INPUT_FIELDS = (
    "start_utc",
    "end_utc",
    "load_kwh",
    "pv_kwh",
    "curtail_kwh",
    "import_kwh",
    "export_kwh",
    "charge_kwh",
    "discharge_kwh",
    "ci_g_per_kwh",
    "ci_source",
    "method_version",
    "provenance",
    "factor_ref",
)
RECORD_FIELDS = IntervalRecord._fields
VALUE_FIELDS = RECORD_FIELDS[:-3]
STRING_FIELDS = frozenset(
    (
        "start_utc",
        "end_utc",
        "ci_source",
        "method_version",
        "provenance",
        "factor_ref",
        "inputs_hash",
        "prev_hash",
        "record_hash",
    )
)
_HASHED = tuple(sorted(f for f in RECORD_FIELDS if f not in ("prev_hash", "record_hash")))
_INPUTS = tuple(sorted(INPUT_FIELDS))
_HASHED_V2 = tuple(f for f in _HASHED if f != "factor_ref")  # format 2: no factor_ref
_INPUTS_V2 = tuple(f for f in _INPUTS if f != "factor_ref")
_HASHED_V1 = tuple(f for f in _HASHED_V2 if f != "provenance")  # format 1: no provenance
_INPUTS_V1 = tuple(f for f in _INPUTS_V2 if f != "provenance")
_V2 = {_HASHED: _HASHED_V2, _INPUTS: _INPUTS_V2}
_V1 = {_HASHED: _HASHED_V1, _INPUTS: _INPUTS_V1}
_PROVENANCE_AT = RECORD_FIELDS.index("provenance")
_FACTOR_AT = RECORD_FIELDS.index("factor_ref")


_TEXT_AT = tuple(i for i, n in enumerate(RECORD_FIELDS) if n in STRING_FIELDS)
_FLOATS = attrgetter(*[n for n in RECORD_FIELDS if n not in STRING_FIELDS])


@dataclass(frozen=True)
class _Spec:
    """How to write the canonical JSON of some fields with one ``%`` formatting."""

    get: itemgetter
    quoted: str  # strings go inside quotes (they need no escaping)
    raw: str  # strings are pre-quoted by the caller
    texts: tuple[int, ...]  # positions of the strings in ``get(record)``


def _spec(names: tuple[str, ...]) -> _Spec:
    at = {n: i for i, n in enumerate(RECORD_FIELDS)}
    fmt = f"%.{DECIMALS}f"
    quoted = [f'"{n}":"%s"' if n in STRING_FIELDS else f'"{n}":{fmt}' for n in names]
    raw = [f'"{n}":%s' if n in STRING_FIELDS else f'"{n}":{fmt}' for n in names]
    texts = tuple(i for i, n in enumerate(names) if n in STRING_FIELDS)
    getter = itemgetter(*[at[n] for n in names])
    return _Spec(getter, "{" + ",".join(quoted) + "}", "{" + ",".join(raw) + "}", texts)


_SPECS = {
    names: _spec(names)
    for names in (_HASHED, _INPUTS, _HASHED_V2, _INPUTS_V2, _HASHED_V1, _INPUTS_V1)
}
_NEG_ZERO = ":-" + format(0.0, f".{DECIMALS}f")


def _canonical(record: IntervalRecord, names: tuple[str, ...]) -> str:
    if not math.isfinite(sum(_FLOATS(record))):
        raise InputError(f"ledger: record {record.start_utc} holds a value that is not finite")
    if record[_FACTOR_AT]:
        spec = _SPECS[names]
    else:
        spec = _SPECS[_V2[names] if record[_PROVENANCE_AT] else _V1[names]]
    values = spec.get(record)
    text = "".join([record[i] for i in _TEXT_AT])
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        out = spec.quoted % values
    else:  # escape the strings as JSON does
        escaped = list(values)
        for i in spec.texts:
            escaped[i] = _quote(escaped[i])
        out = spec.raw % tuple(escaped)
    return out.replace(_NEG_ZERO, _NEG_ZERO.replace("-", ""))


def canonical(record: IntervalRecord) -> str:
    """The canonical text of a record: every field but ``prev_hash`` and ``record_hash``
    (and, for a format-2 record, ``factor_ref``; for a format-1 record, ``provenance`` too).

    Sorted-key JSON without spaces; floats with exactly ``DECIMALS`` decimals.

    Raises
    ------
    InputError
        When a value is NaN or infinite.
    """
    return _canonical(record, _HASHED)


def inputs_hash(record: IntervalRecord) -> str:
    """SHA-256 (hex) of the canonical JSON of the record's ``INPUT_FIELDS``."""
    return hashlib.sha256(_canonical(record, _INPUTS).encode()).hexdigest()


def record_hash(record: IntervalRecord, prev_hash: str) -> str:
    """``sha256(prev_hash + canonical(record))`` as hex; ``record.inputs_hash`` must be set."""
    return hashlib.sha256((prev_hash + canonical(record)).encode()).hexdigest()


def chain(records: list[IntervalRecord], prev_hash: str = GENESIS) -> list[IntervalRecord]:
    """Records with ``inputs_hash``, ``prev_hash`` and ``record_hash`` set, in the given order.

    Parameters
    ----------
    records : list of IntervalRecord
        In ledger order (by ``start_utc``); existing hashes are replaced.
    prev_hash : str
        Head of the ledger these records are appended to (``GENESIS`` for a new ledger).
    """
    n = len(VALUE_FIELDS)
    out = []
    for rec in records:
        values = rec[:n]
        ih = inputs_hash(rec)
        head = record_hash(IntervalRecord(*values, ih, prev_hash, ""), prev_hash)
        out.append(IntervalRecord(*values, ih, prev_hash, head))
        prev_hash = head
    return out


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of ``verify``: ``index`` of the first bad record (None when all is well) and why."""

    index: int | None
    reason: str

    @property
    def ok(self) -> bool:
        """True when the whole ledger checked out."""
        return self.index is None


def _link_problem(
    records: list[IntervalRecord], i: int, expected: str, seqs: list[int] | None
) -> tuple[int, str]:
    """Where a broken link at ``i`` really starts, and why (see ``verify``)."""
    rec = records[i]
    later = {r.record_hash: j for j, r in enumerate(records) if j >= i}
    if rec.prev_hash in later:
        j = later[rec.prev_hash]
        return i, (
            f"out of order: record {rec.start_utc} should follow the record now at index "
            f"{j} ({records[j].start_utc}); rows were reordered"
        )
    if i == 0 and expected == GENESIS:
        return 0, "the first record does not start the chain: earlier rows were deleted"
    if i > 0 and rec.prev_hash == GENESIS:
        return 0, (
            f"inserted before the first: the record now at index {i} ({rec.start_utc}) starts "
            f"the chain, so the {i} row(s) before it were added in front of it"
        )
    adjacent = seqs[i] == seqs[i - 1] + 1 if seqs is not None else (
        records[i - 1].end_utc == rec.start_utc
    )
    if i > 0 and adjacent:  # nothing can be missing between: the previous row was rewritten
        prev = records[i - 1]
        return i - 1, (
            f"edited value at {prev.start_utc}: its hashes were recomputed, but the next "
            f"record's prev_hash still holds the original"
        )
    where = f"after {records[i - 1].start_utc}" if i else "at the start"
    return i, (
        f"broken link {where}: prev_hash matches no record; the row before "
        f"{rec.start_utc} was deleted or the previous row rewritten"
    )


def _seq_problem(seqs: list[int], i: int) -> str | None:
    """The store numbers rows 1, 2, 3, ...: a lower number was inserted, a gap was deleted."""
    want = 1 if i == 0 else seqs[i - 1] + 1
    if seqs[i] < want:
        return (
            f"inserted row: seq {seqs[i]} where the store's numbering has {want}; "
            f"the row was added by hand" + (" before the first" if i == 0 else "")
        )
    if seqs[i] > want:
        return f"deleted: rows seq {want}..{seqs[i] - 1} are missing before seq {seqs[i]}"
    return None


def _referenced_value(ref: str) -> float | None:
    """The g/kWh a factor reference ``KEY|G_PER_KWH|SHA256`` names, or None if unreadable."""
    parts = ref.rsplit("|", 2)
    try:
        return float(parts[1]) if len(parts) == 3 and len(parts[2]) == 64 else None
    except ValueError:
        return None


def _own_problem(rec: IntervalRecord, prev: IntervalRecord | None, expected: str) -> str | None:
    """What is wrong with one record on its own and beside its predecessor, or None."""
    try:
        if inputs_hash(rec) != rec.inputs_hash:
            return f"edited input at {rec.start_utc}: inputs_hash does not match"
        if record_hash(rec, expected) != rec.record_hash:
            return f"edited value at {rec.start_utc}: record_hash does not match"
    except InputError as exc:
        return str(exc)
    if rec.factor_ref and not rec.provenance:
        return f"edited value at {rec.start_utc}: a record with a factor_ref has no provenance"
    if rec.factor_ref and rec.ci_source == "config_factor":
        named = _referenced_value(rec.factor_ref)
        if named is None or abs(named - rec.ci_g_per_kwh) > 1e-9:
            return (
                f"edited value at {rec.start_utc}: ci_g_per_kwh {rec.ci_g_per_kwh} is not the "
                f"value of its factor reference {rec.factor_ref.split('|')[0]!r} ({named})"
            )
    if rec.provenance not in ("", *PROVENANCE):
        return (
            f"edited value at {rec.start_utc}: provenance {rec.provenance!r} is not one of "
            f"{PROVENANCE}"
        )
    if not rec.start_utc < rec.end_utc:
        return f"out of time order: record {rec.start_utc} ends at {rec.end_utc}"
    if prev is not None and rec.start_utc < prev.end_utc:
        return (
            f"out of time order: record {rec.start_utc} starts before the previous record "
            f"ends ({prev.end_utc}); it was added after later intervals"
        )
    return None


def verify(
    records: list[IntervalRecord],
    genesis: str = GENESIS,
    expected_head: str | None = None,
    seqs: list[int] | None = None,
) -> VerifyResult:
    """Check a ledger's hash chain and name the first bad record.

    Each record must continue the chain (``prev_hash``), match its own hashes and start no
    earlier than its predecessor ends. A broken link is blamed where the difference starts:
    on the previous record when nothing can be missing between the two (its hashes were
    recomputed after an edit), on the first record when a later one starts the chain again
    (rows inserted in front of it).

    Parameters
    ----------
    records : list of IntervalRecord
        The ledger in stored order.
    genesis : str
        ``prev_hash`` of the first record (``GENESIS`` for a whole ledger).
    expected_head : str, optional
        ``record_hash`` the last record must have (an anchor kept outside the ledger);
        detects rows removed from the end.
    seqs : list of int, optional
        The store's row numbers (1, 2, 3, ... when untouched); a lower number is an
        inserted row, a gap deleted rows. Without them, adjacent intervals stand in.

    Returns
    -------
    VerifyResult
        ``index`` None and reason ``"ok"``, or the first bad index and why.
    """
    expected = genesis
    for i, rec in enumerate(records):
        problem = _seq_problem(seqs, i) if seqs is not None else None
        if problem is not None:
            return VerifyResult(i, problem)
        if rec.prev_hash != expected:
            return VerifyResult(*_link_problem(records, i, expected, seqs))
        problem = _own_problem(rec, records[i - 1] if i else None, expected)
        if problem is not None:
            return VerifyResult(i, problem)
        expected = rec.record_hash
    if expected_head is not None and expected != expected_head:
        return VerifyResult(
            len(records),
            "the last record is not the expected head: rows were "
            "removed from the end or appended without updating the anchor",
        )
    return VerifyResult(None, "ok")


def records_from_accounts(
    accounts: pd.DataFrame,
    step: pd.Timedelta,
    method_version: str,
    provenance: str | Sequence[str] = "measured",
    factor_ref: str = "",
) -> list[IntervalRecord]:
    """Unchained ledger records from per-interval accounts, values quantised.

    Parameters
    ----------
    accounts : pandas.DataFrame
        Indexed by UTC interval start with the columns of
        ``dispatch.carbon.accounting.ACCOUNT_COLUMNS``.
    step : pandas.Timedelta
        Interval length (``end = start + step``).
    method_version : str
        ``dispatch.carbon.accounting.METHOD_VERSION`` used to compute the accounts.
    provenance : str or sequence of str
        ``PROVENANCE`` of every interval, or one per row of ``accounts``.
    factor_ref : str
        The grid factor of record (``dispatch.carbon.factors.reference``) of every interval;
        ``""`` writes format-2 records (no factor reference).

    Raises
    ------
    InputError
        For a provenance that is not one of ``PROVENANCE``.
    """
    index = pd.DatetimeIndex(accounts.index).tz_convert("UTC")
    starts = list(index.strftime(TIME_FORMAT))
    ends = list((index + step).strftime(TIME_FORMAT))
    cols: list[list] = []
    for name in VALUE_FIELDS:
        if name in ("start_utc", "end_utc"):
            cols.append(starts if name == "start_utc" else ends)
        elif name == "method_version":
            cols.append([method_version] * len(starts))
        elif name == "provenance":
            marks = [provenance] * len(starts) if isinstance(provenance, str) else provenance
            bad = sorted(set(marks) - set(PROVENANCE))
            if bad or len(marks) != len(starts):
                raise InputError(
                    f"ledger records: provenance {bad or len(marks)} is not one per interval "
                    f"of {PROVENANCE}"
                )
            cols.append([str(m) for m in marks])
        elif name == "factor_ref":
            cols.append([factor_ref] * len(starts))
        elif name == "ci_source":
            cols.append([str(v) for v in accounts[name]])
        else:
            values = accounts[name].to_numpy(float)
            cols.append((np.round(values, DECIMALS) + 0.0).tolist())
    return [IntervalRecord(*row) for row in zip(*cols, strict=True)]


def records_frame(records: list[IntervalRecord]) -> pd.DataFrame:
    """Ledger records as a frame indexed by UTC interval start, one column per value field.

    Floats are rounded to ``DECIMALS`` decimals: what the hash covers is what reports add up,
    so a change too small to reach the canonical form cannot change a report either.
    """
    n = len(VALUE_FIELDS)
    frame = pd.DataFrame([r[:n] for r in records], columns=list(VALUE_FIELDS))
    floats = [c for c in VALUE_FIELDS if c not in STRING_FIELDS]
    frame[floats] = frame[floats].astype(float).round(DECIMALS)
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame["start_utc"], format=TIME_FORMAT, utc=True))
    frame.index.name = "start"
    return frame
