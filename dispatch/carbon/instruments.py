"""Pure market instruments in the chain: credit purchases, partial retirements, certificates.

Role: the append-only chained records of the carbon instruments a factory holds and claims,
their checks, and the views the reports use (offset batches, certificates). May import only
``dispatch.types``, ``dispatch.config`` (the certificate type), ``dispatch.carbon.offsets``
and the standard library; no I/O, no wall clock (``today`` is passed in).

A record is ``(kind, recorded_utc, body)``; ``body`` maps the registry fields below.
``record_hash = sha256(prev_hash + canonical({"body", "kind", "recorded_utc"}))`` with
``canonical`` sorted-key JSON without spaces (UTF-8); the first record's ``prev_hash`` is
``GENESIS``. Kinds and fields (dates ``YYYY-MM-DD``, tonnes t CO2e, energy MWh):

- ``purchase``: ``batch`` (``credit_type:serial_first``), ``credit_type``, ``registry`` (e.g.
  the national CCER registry, Suzhou's PHCER carbon-inclusive platform), ``project_id``,
  ``methodology``, ``vintage_year``, ``monitoring_from``/``monitoring_to``, ``serial_first``/
  ``serial_last``, ``tonnes``, ``purchased_on``.
- ``retirement`` (of part or all of a batch): ``batch``, ``tonnes``, ``retired_on``,
  ``cancellation_number``, ``beneficiary``, ``claimed_from``/``claimed_to``.
- ``certificate`` (GEC, I-REC or a PPA, allocated to imports): ``certificate_id``,
  ``scheme``, ``registry``, ``project_id``, ``generation_from``/``generation_to``,
  ``serial_first``/``serial_last``, ``mwh``, ``ci_g_per_kwh``, ``claimant``,
  ``market_boundary``, ``claimed_from``/``claimed_to`` (the consumption it covers),
  ``cancellation_number``.
- ``bill`` (one month of an imported utility bill, for the monthly reconciliation):
  ``month`` (``YYYY-MM``, site-local), ``import_kwh`` (the billed grid import, kWh),
  ``source_file`` and ``source_sha256`` (the bill file it was read from). A later record of
  the same month is a correction: the latest counts (``bill_view``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dispatch.carbon.offsets import CREDIT_TYPES, OffsetRecord
from dispatch.config import CertificateSection
from dispatch.types import InputError

GENESIS = "0" * 64
SCHEMES = ("GEC", "I-REC", "PPA", "other")
_TEXT, _DATE, _POS, _NONNEG, _YEAR = "text", "date", "positive", "non-negative", "year"
FIELDS: dict[str, dict[str, str]] = {
    "purchase": {
        "batch": _TEXT,
        "credit_type": _TEXT,
        "registry": _TEXT,
        "project_id": _TEXT,
        "methodology": _TEXT,
        "vintage_year": _YEAR,
        "monitoring_from": _DATE,
        "monitoring_to": _DATE,
        "serial_first": _TEXT,
        "serial_last": _TEXT,
        "tonnes": _POS,
        "purchased_on": _DATE,
    },
    "retirement": {
        "batch": _TEXT,
        "tonnes": _POS,
        "retired_on": _DATE,
        "cancellation_number": _TEXT,
        "beneficiary": _TEXT,
        "claimed_from": _DATE,
        "claimed_to": _DATE,
    },
    "certificate": {
        "certificate_id": _TEXT,
        "scheme": _TEXT,
        "registry": _TEXT,
        "project_id": _TEXT,
        "generation_from": _DATE,
        "generation_to": _DATE,
        "serial_first": _TEXT,
        "serial_last": _TEXT,
        "mwh": _POS,
        "ci_g_per_kwh": _NONNEG,
        "claimant": _TEXT,
        "market_boundary": _TEXT,
        "claimed_from": _DATE,
        "claimed_to": _DATE,
        "cancellation_number": _TEXT,
    },
    "bill": {
        "month": _TEXT,
        "import_kwh": _NONNEG,
        "source_file": _TEXT,
        "source_sha256": _TEXT,
    },
}
#: Fields that may be empty text (the rest must say something).
OPTIONAL = frozenset({"methodology", "cancellation_number", "project_id", "serial_last"})
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_RANGES = (
    ("monitoring_from", "monitoring_to"),
    ("claimed_from", "claimed_to"),
    ("generation_from", "generation_to"),
)


@dataclass(frozen=True)
class Instrument:
    """One chained instrument record (``seq`` is the store's row number, 0 when unstored)."""

    kind: str
    recorded_utc: str
    body: Mapping[str, Any]
    prev_hash: str = ""
    record_hash: str = ""
    seq: int = 0

    def name(self, i: int) -> str:
        """How messages name it: position, kind and its batch or certificate id."""
        ident = self.body.get("batch", self.body.get("certificate_id", self.body.get("month", "?")))
        return f"instrument record {i} ({self.kind} {ident!r})"


def canonical(kind: str, recorded_utc: str, body: Mapping[str, Any]) -> str:
    """Sorted-key JSON without spaces of what a record hash covers."""
    doc = {"body": dict(body), "kind": kind, "recorded_utc": recorded_utc}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(kind: str, recorded_utc: str, body: Mapping[str, Any], prev_hash: str) -> str:
    """``sha256(prev_hash + canonical(...))`` as hex."""
    return hashlib.sha256((prev_hash + canonical(kind, recorded_utc, body)).encode()).hexdigest()


def chained(kind: str, recorded_utc: str, body: Mapping[str, Any], prev_hash: str) -> Instrument:
    """A new record continuing ``prev_hash`` (the stored instruments head)."""
    h = record_hash(kind, recorded_utc, body, prev_hash)
    return Instrument(kind, recorded_utc, dict(body), prev_hash, h)


def _field_problem(name: str, want: str, value: Any) -> str | None:
    if want == _TEXT:
        ok = isinstance(value, str) and (bool(value.strip()) or name in OPTIONAL)
        return (
            None
            if ok
            else f"{name} = {value!r} must be text" + ("" if name in OPTIONAL else " (not empty)")
        )
    if want == _DATE:
        try:
            dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            return f"{name} = {value!r} is not a date YYYY-MM-DD"
        return None
    if want == _YEAR:
        ok = isinstance(value, int) and not isinstance(value, bool) and 1990 <= value <= 2100
        return None if ok else f"{name} = {value!r} must be a year in 1990..2100"
    number = isinstance(value, int | float) and not isinstance(value, bool)
    ok = number and math.isfinite(value) and (value > 0 if want == _POS else value >= 0)
    return None if ok else f"{name} = {value!r} must be {'> 0' if want == _POS else '>= 0'}"


def record_problems(i: int, rec: Instrument) -> list[str]:
    """What is malformed in one record on its own, each line naming it and the field."""
    where = rec.name(i)
    if rec.kind not in FIELDS:
        return [f"{where}: kind must be one of {list(FIELDS)}"]
    spec = FIELDS[rec.kind]
    problems = [f"{where}: {name} is missing" for name in spec if name not in rec.body]
    problems += [f"{where}: unknown field {k!r}" for k in rec.body if k not in spec]
    for name, want in spec.items():
        p = _field_problem(name, want, rec.body.get(name)) if name in rec.body else None
        if p:
            problems.append(f"{where}: {p}")
    if problems:
        return problems
    b = rec.body
    for lo, hi in _RANGES:
        if lo in b and b[lo] > b[hi]:
            problems.append(f"{where}: {lo} {b[lo]} is after {hi} {b[hi]}")
    if rec.kind == "purchase" and b["credit_type"] not in CREDIT_TYPES:
        problems.append(f"{where}: credit_type must be one of {list(CREDIT_TYPES)}")
    if rec.kind == "certificate" and b["scheme"] not in SCHEMES:
        problems.append(f"{where}: scheme must be one of {list(SCHEMES)}")
    if rec.kind == "bill" and not _MONTH.match(b["month"]):
        problems.append(f"{where}: month = {b['month']!r} is not YYYY-MM")
    return problems


def problems(records: Sequence[Instrument], today: dt.date) -> list[str]:
    """Every problem of the instruments, one line each (empty when valid).

    Beyond each record's fields: a batch or certificate id is bought or listed once; a
    retirement names a purchased batch, is not dated before its purchase nor after ``today``
    (a retirement is a fact on a registry, not a plan) nor before the batch's vintage year,
    and the retirements of a batch never exceed its tonnes.
    """
    out = [p for i, r in enumerate(records) for p in record_problems(i, r)]
    if out:
        return out
    bought: dict[str, dict[str, Any]] = {}
    left: dict[str, float] = {}
    certs: set[str] = set()
    for i, r in enumerate(records):
        b, where = r.body, r.name(i)
        if r.kind == "purchase":
            if b["batch"] in bought:
                out.append(f"{where}: batch listed twice")
            elif b["purchased_on"] > today.isoformat():
                out.append(f"{where}: purchased_on {b['purchased_on']} lies after today ({today})")
            bought.setdefault(b["batch"], dict(b))
            left.setdefault(b["batch"], float(b["tonnes"]))
        elif r.kind == "certificate":
            if b["certificate_id"] in certs:
                out.append(f"{where}: certificate listed twice")
            certs.add(b["certificate_id"])
        elif r.kind == "bill":
            continue
        else:
            out += _retirement_problems(where, b, bought.get(b["batch"]), left, today)
    return out


def _retirement_problems(
    where: str,
    b: Mapping[str, Any],
    batch: Mapping[str, Any] | None,
    left: dict[str, float],
    today: dt.date,
) -> list[str]:
    if batch is None:
        return [f"{where}: no purchase of batch {b['batch']!r} before it"]
    out = []
    if b["retired_on"] > today.isoformat():
        out.append(f"{where}: retired_on {b['retired_on']} lies after today ({today})")
    if b["retired_on"] < batch["purchased_on"]:
        out.append(
            f"{where}: retired_on {b['retired_on']} is before purchased_on {batch['purchased_on']}"
        )
    if int(b["retired_on"][:4]) < batch["vintage_year"]:
        out.append(
            f"{where}: retired_on {b['retired_on']} is before vintage {batch['vintage_year']}"
        )
    rest = left[b["batch"]] - float(b["tonnes"])
    if rest < -1e-9:
        out.append(
            f"{where}: retires {b['tonnes']} t but only {left[b['batch']]:g} t of the "
            f"batch are held (a double retirement)"
        )
    left[b["batch"]] = rest
    return out


def validate(records: Sequence[Instrument], today: dt.date) -> None:
    """Raise ``InputError`` listing every problem ``problems`` finds."""
    found = problems(records, today)
    if found:
        raise InputError("carbon instruments:\n" + "\n".join(f"  - {p}" for p in found))


def offset_view(records: Sequence[Instrument]) -> list[OffsetRecord]:
    """The batches as offset records the reports add up: one per retirement (its tonnes,
    dated), and one for the rest still held (when any)."""
    batches = {r.body["batch"]: r.body for r in records if r.kind == "purchase"}
    held = {k: float(b["tonnes"]) for k, b in batches.items()}
    out = []
    for r in records:
        if r.kind != "retirement":
            continue
        b = batches[r.body["batch"]]
        held[r.body["batch"]] -= float(r.body["tonnes"])
        serial = f"{b['serial_first']}#{r.body['cancellation_number'] or r.recorded_utc}"
        out.append(_offset(b, serial, float(r.body["tonnes"]), r.body["retired_on"]))
    out += [
        _offset(b, b["serial_first"], held[k], None) for k, b in batches.items() if held[k] > 1e-9
    ]
    return out


def _offset(b: Mapping[str, Any], serial: str, tonnes: float, on: str | None) -> OffsetRecord:
    return OffsetRecord(
        credit_type=b["credit_type"],
        serial=serial,
        vintage_year=b["vintage_year"],
        tonnes=round(tonnes, 6),
        purchased_on=dt.date.fromisoformat(b["purchased_on"]),
        retired_on=None if on is None else dt.date.fromisoformat(on),
        registry=b["registry"],
    )


def certificate_view(records: Sequence[Instrument]) -> list[CertificateSection]:
    """The certificates as the market-based method allocates them (claimed period = window)."""
    return [
        CertificateSection(
            id=r.body["certificate_id"],
            instrument="ppa" if r.body["scheme"] == "PPA" else "green_certificate",
            valid_from=dt.date.fromisoformat(r.body["claimed_from"]),
            valid_to=dt.date.fromisoformat(r.body["claimed_to"]),
            mwh=float(r.body["mwh"]),
            ci_g_per_kwh=float(r.body["ci_g_per_kwh"]),
        )
        for r in records
        if r.kind == "certificate"
    ]


def bill_view(records: Sequence[Instrument]) -> dict[str, Any] | None:
    """The stored utility bill as ``report.build_report`` takes it, or None without one.

    Returns
    -------
    dict or None
        ``{"months": {YYYY-MM: kWh} (the latest record of each month), "source": {"chain":
        "carbon_instruments", "records": [{"month", "import_kwh", "recorded_utc", "seq",
        "source_file", "source_sha256"}, ...]}}`` (the records that count, by month).
    """
    latest: dict[str, Instrument] = {}
    for r in records:
        if r.kind == "bill":
            latest[r.body["month"]] = r
    if not latest:
        return None
    rows = [
        {"month": m, "import_kwh": float(r.body["import_kwh"]), "recorded_utc": r.recorded_utc,
         "seq": r.seq, "source_file": r.body["source_file"],
         "source_sha256": r.body["source_sha256"]}
        for m, r in sorted(latest.items())
    ]
    return {
        "months": {row["month"]: row["import_kwh"] for row in rows},
        "source": {"chain": "carbon_instruments", "records": rows},
    }


def verify(records: Sequence[Instrument]) -> tuple[int, str] | None:
    """The first record whose row number, link or hash does not check out, and why.

    Rows are numbered 1, 2, 3, ... by the store (``seq``): a lower number is an inserted
    row, a gap a deleted one. Each ``prev_hash`` must be the previous ``record_hash``
    (``GENESIS`` first), each ``record_hash`` its own, and ``recorded_utc`` never before the
    previous one; a broken link between consecutively numbered rows blames the earlier row
    (its hash was recomputed after an edit). None when all is well.
    """
    expected = GENESIS
    for i, r in enumerate(records):
        want = 1 if i == 0 else records[i - 1].seq + 1
        if r.seq and r.seq < want:
            return i, f"inserted: {r.name(i)} has seq {r.seq} where the numbering has {want}"
        if r.seq and r.seq > want:
            return i, f"deleted: rows seq {want}..{r.seq - 1} are missing before seq {r.seq}"
        if r.prev_hash != expected:
            if i and (not r.seq or r.seq == records[i - 1].seq + 1):
                return i - 1, f"edited: {records[i - 1].name(i - 1)} was rewritten (the next "
                "record's prev_hash keeps the original)"
            return i, f"broken link at {r.name(i)}: prev_hash matches no record"
        if record_hash(r.kind, r.recorded_utc, r.body, expected) != r.record_hash:
            return i, f"edited: {r.name(i)}: record_hash does not match"
        if i and r.recorded_utc < records[i - 1].recorded_utc:
            return i, (
                f"misdated: {r.name(i)} was recorded at {r.recorded_utc}, before the "
                f"record ahead of it ({records[i - 1].recorded_utc})"
            )
        expected = r.record_hash
    return None
