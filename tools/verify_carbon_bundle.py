#!/usr/bin/env python3
"""Verify a carbon-ledger export bundle with the Python standard library alone.

Usage::

    python3 verify_carbon_bundle.py BUNDLE_DIR [--public-key HEX]

A bundle is what ``dispatch carbon export --period P --out DIR`` writes: ``manifest.json``
(the SHA-256 of every file), ``intervals.json`` (the ledger rows of the period, and of the
rest of any certificate window crossing it, with the hash of the row before them and that
span), ``instruments.json`` (the whole chain of carbon instruments, the utility bill among
them), ``factors.csv`` (the factor table), ``checkpoints/*.json`` (signed checkpoints) and
the report (``report.json``, ``.csv``, ``.html``). This file re-derives, from the bundle
alone and independently of the ``dispatch`` package:

1. every file's SHA-256 against the manifest;
2. each interval record's ``inputs_hash`` and ``record_hash`` (sorted-key JSON without spaces,
   floats with exactly 6 decimals, ``-0`` as ``0``; ``record_hash = sha256(prev_hash +
   canonical)``) and the links between them, from the stated predecessor hash. Formats: a
   record with a ``factor_ref`` is format 3 (every field hashed); one with a ``provenance``
   but no ``factor_ref`` format 2 (its canonical forms leave ``factor_ref`` out); one with
   neither format 1 (they leave both out);
3. each record's location-based emissions (``import_kwh * ci_g_per_kwh / 1000`` kg, to the
   quantisation of the values) and, for a ``config_factor`` interval, that its intensity is
   the value its ``factor_ref`` (``KEY|G_PER_KWH|SHA256``) names;
4. the report's totals over the period's rows (intervals, import kWh, location kg); its
   factor references (each one's record count and its status against ``factors.csv``: the
   SHA-256 of the entry's sorted-key JSON) and restatement (the period's imports times the
   factor); and the market-based total: certificates pro rata to the uncovered imports in
   their windows over every row of the span (which must be the period grown by every
   certificate window meeting it), the rest at the residual mix, summed over the period;
5. the instruments' hash chain (``sha256(prev_hash + canonical({body, kind, recorded_utc}))``),
   the report's chained certificates against it, and the report's reconciliation against
   the stored utility bill (the latest ``bill`` record of each month: ledger import, bill,
   difference);
6. each checkpoint's Ed25519 signature (RFC 8032, written out below) and that the rows it
   proves, where the bundle holds them, have its fingerprints (first 8 bytes of each hash).

Exit status: 0 when everything checks out, 3 naming the first row or record that does not,
2 for a bundle that cannot be read.
"""

from __future__ import annotations

import argparse
import base64
import csv
import datetime as dt
import hashlib
import json
import math
import sys
from pathlib import Path
from zoneinfo import ZoneInfo  # stdlib; the system time zone database

GENESIS = "0" * 64
DECIMALS = 6
STRING_FIELDS = {
    "start_utc",
    "end_utc",
    "ci_source",
    "method_version",
    "provenance",
    "factor_ref",
    "inputs_hash",
    "prev_hash",
    "record_hash",
}
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
)
FINGERPRINT_BYTES = 8
CONFIG_KEY = "config:grid_ci_g_per_kwh"  # the factor synthesised from the configured value
TOLERANCE_FRAC = 0.02  # a bill month differing more than this is a warning of the report


# ------------------------------------------------------------------ Ed25519 (RFC 8032, 5.1.7)
P = 2**255 - 19
Q = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _recover_x(y: int, sign: int) -> int | None:
    xx = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(xx, (P + 3) // 8, P)
    if (x * x - xx) % P:
        x = x * SQRT_M1 % P
    if (x * x - xx) % P:
        return None
    if x == 0 and sign:
        return None
    return P - x if x & 1 != sign else x


def _add(a: tuple, b: tuple) -> tuple:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    e = (y1 - x1) * (y2 - x2) % P
    f = (y1 + x1) * (y2 + x2) % P
    g = 2 * t1 * t2 * D % P
    h = 2 * z1 * z2 % P
    e, f, g, h = f - e, h - g, h + g, f + e
    return e * f % P, g * h % P, f * g % P, e * h % P


def _mul(point: tuple, k: int) -> tuple:
    out = (0, 1, 1, 0)
    while k:
        if k & 1:
            out = _add(out, point)
        point, k = _add(point, point), k >> 1
    return out


def _decode(s: bytes) -> tuple | None:
    y = int.from_bytes(s, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _recover_x(y, sign) if y < P else None
    return None if x is None else (x, y, 1, x * y % P)


def _encode(point: tuple) -> bytes:
    x, y, z, _ = point
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


_BY = 4 * pow(5, P - 2, P) % P
_BASE = (_recover_x(_BY, 0), _BY, 1, _recover_x(_BY, 0) * _BY % P)


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is ``public``'s Ed25519 signature of ``message``."""
    if len(public) != 32 or len(signature) != 64:
        return False
    a, r = _decode(public), _decode(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= Q:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % Q
    return _encode(_mul(_BASE, s)) == _encode(_add(r, _mul(a, h)))


# ----------------------------------------------------------------------------- the records
def _canonical(record: dict, names: list[str]) -> str:
    parts = []
    for n in sorted(names):
        v = record[n]
        if n in STRING_FIELDS:
            parts.append(f'"{n}":' + json.dumps(v))
        else:
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"{n} = {v!r} is not a finite number")
            text = f"{v:.{DECIMALS}f}"
            parts.append(
                f'"{n}":' + ("0." + "0" * DECIMALS if text == "-0." + "0" * DECIMALS else text)
            )
    return "{" + ",".join(parts) + "}"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class BundleError(Exception):
    """The first thing that does not check out: ``where`` (a row or file) and why."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where, self.reason = where, reason


def check_manifest(folder: Path) -> dict:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    for name, digest in sorted(manifest["files"].items()):
        path = folder / name
        if not path.is_file():
            raise BundleError(f"file {name}", "listed in the manifest but missing")
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise BundleError(f"file {name}", "its SHA-256 is not the manifest's: it was changed")
    return manifest


def check_intervals(doc: dict) -> tuple[list[dict], tuple[int, BundleError] | None]:
    """The period's rows re-hashed and re-linked: the rows and the first failure (its ledger
    index), if any. A broken link between adjacent intervals blames the earlier row (its
    hashes were recomputed after an edit; nothing can be missing between)."""
    fields, first = doc["fields"], int(doc["first_index"])
    rows = [dict(zip(fields, values, strict=True)) for values in doc["records"]]
    hashed = [f for f in fields if f not in ("prev_hash", "record_hash")]
    expected = doc["prev_hash"]
    for i, row in enumerate(rows):
        where = f"interval row {first + i} ({row.get('start_utc')})"
        row.setdefault("factor_ref", "")  # a bundle of records written before factor_ref
        # format 3: factor_ref and provenance hashed; 2: provenance only; 1: neither
        missing = {"factor_ref"} if row.get("provenance") else {"factor_ref", "provenance"}
        if row["factor_ref"]:
            missing = set()
            if not row.get("provenance"):
                why = "edited value: a record with a factor_ref has no provenance"
                return rows, (first + i, BundleError(where, why))
        names = [f for f in hashed if f not in missing]
        inputs_names = [
            f for f in (*INPUT_FIELDS, "provenance", "factor_ref") if f not in missing
        ]
        try:
            inputs = _sha(_canonical(row, inputs_names))
            own = _sha(expected + _canonical(row, names))
        except (KeyError, ValueError) as exc:
            return rows, (first + i, BundleError(where, f"unreadable value: {exc}"))
        if row["prev_hash"] != expected:
            if i and rows[i - 1]["end_utc"] == row["start_utc"]:
                prev = f"interval row {first + i - 1} ({rows[i - 1]['start_utc']})"
                why = "edited value: its hashes were recomputed, the next row keeps the original"
                return rows, (first + i - 1, BundleError(prev, why))
            why = "prev_hash is not the previous row's hash (deleted, inserted or reordered rows)"
            return rows, (first + i, BundleError(where, why))
        if inputs != row["inputs_hash"]:
            return rows, (first + i, BundleError(where, "edited input: inputs_hash does not match"))
        if own != row["record_hash"]:
            return rows, (first + i, BundleError(where, "edited value: record_hash does not match"))
        if abs(row["location_kg_co2"] - row["import_kwh"] * row["ci_g_per_kwh"] / 1000) > 2e-6:
            why = "location_kg_co2 is not import_kwh x ci_g_per_kwh / 1000"
            return rows, (first + i, BundleError(where, why))
        why = _factor_problem(row)
        if why:
            return rows, (first + i, BundleError(where, why))
        expected = row["record_hash"]
    return rows, None


def _parse_ref(text: str) -> tuple[str, float, str]:
    key, value, digest = text.rsplit("|", 2)
    g = float(value)
    if not key or len(digest) != 64 or not math.isfinite(g):
        raise ValueError(f"factor_ref {text!r} is not KEY|G_PER_KWH|SHA256")
    return key, g, digest


def _factor_problem(row: dict) -> str | None:
    """Why a row's intensity is not what its factor reference names, or None."""
    if not row["factor_ref"]:
        return None
    try:
        _, g, _ = _parse_ref(row["factor_ref"])
    except ValueError as exc:
        return f"edited value: {exc}"
    if row["ci_source"] == "config_factor" and abs(row["ci_g_per_kwh"] - g) > 1e-9:
        return (
            f"ci_g_per_kwh {row['ci_g_per_kwh']} is not {g}, the value of its factor "
            "reference (ci_source config_factor)"
        )
    return None


def read_factors(text: str) -> dict[str, dict]:
    """``factors.csv``: key -> the entry as the ledger hashes it (year int, value float)."""
    table = {}
    for row in csv.DictReader(text.splitlines()):
        entry = dict(row)
        entry["year"], entry["g_per_kwh"] = int(row["year"]), float(row["g_per_kwh"])
        table[entry["key"]] = entry
    return table


def _entry_hash(entry: dict) -> str:
    return _sha(json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def check_factors(period_rows: list[dict], table: dict[str, dict], report: dict) -> int:
    """The report's ``factor_references`` and ``restatement`` re-derived from the period's
    rows and the factor table; returns how many references there are."""
    counts: dict[str, int] = {}
    for r in period_rows:
        counts[r["factor_ref"]] = counts.get(r["factor_ref"], 0) + 1
    refs = []
    for ref, n in sorted(counts.items()):
        if not ref:
            refs.append({"key": None, "g_per_kwh": None, "entry_sha256": None, "records": n,
                         "status": "not recorded"})
            continue
        key, g, digest = _parse_ref(ref)
        if key == CONFIG_KEY:
            status = "configured value"
        elif key not in table:
            status = "not in the table"
        elif _entry_hash(table[key]) != digest:
            status = "revised in the table"
        else:
            status = "matches the table"
        refs.append({"key": key, "g_per_kwh": g, "entry_sha256": digest, "records": n,
                     "status": status})
    if report.get("factor_references") != refs:
        raise BundleError(
            "report.json",
            f"factor_references {json.dumps(report.get('factor_references'))} but the rows "
            f"and factors.csv give {json.dumps(refs)}",
        )
    restated = report.get("restatement")
    if restated:
        factor = restated["factor"]
        if table.get(factor["key"]) != factor:
            raise BundleError("report.json", f"restatement factor {factor['key']!r} is not "
                              "the entry of factors.csv")
        kg = math.fsum(r["import_kwh"] for r in period_rows) * factor["g_per_kwh"] / 1000.0
        if abs(restated["restated_location_kg_co2"] - kg) > 1e-6 * max(1, len(period_rows)):
            raise BundleError(
                "report.json",
                f"restatement restated_location_kg_co2 = "
                f"{restated['restated_location_kg_co2']} but the rows give {round(kg, 6)}",
            )
    return len(refs)


def check_totals(rows: list[dict], report: dict) -> None:
    totals = report["totals"]
    got = {
        "intervals": len(rows),
        "import_kwh": round(sum(r["import_kwh"] for r in rows), DECIMALS),
        "location_kg_co2": round(sum(r["location_kg_co2"] for r in rows), DECIMALS),
    }
    for key, value in got.items():
        if abs(totals[key] - value) > 1e-6 * max(1, len(rows)):
            raise BundleError(
                "report.json", f"totals {key} = {totals[key]} but the rows give {value}"
            )


def _local(text: str, zone) -> dt.datetime:
    t = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return t.astimezone(zone)


def period_rows(rows: list[dict], report: dict) -> list[dict]:
    """The rows whose interval starts in the report's period (site-local bounds)."""
    period = report["period"]
    lo, hi = dt.datetime.fromisoformat(period["start"]), dt.datetime.fromisoformat(period["end"])
    return [r for r in rows if lo <= _local(r["start_utc"], dt.UTC) < hi]


def _span(lo: dt.date, hi: dt.date, windows: list[tuple[dt.date, dt.date]]) -> tuple:
    """``[lo, hi)`` grown until every window (inclusive dates) meeting it lies inside it."""
    grown = True
    while grown:
        grown = False
        for first, last in windows:
            if first < hi and last >= lo and (first < lo or last >= hi):
                lo, hi = min(lo, first), max(hi, last + dt.timedelta(days=1))
                grown = True
    return lo, hi


def check_market(rows: list[dict], span: dict, report: dict) -> str:
    """Re-derive the period's market-based kg CO2 and compare with the report's total.

    Certificates are taken soonest to expire first (``valid_to``, ``valid_from``, ``id``);
    each covers the fraction ``min(1, mwh * 1000 / uncovered imports in its window)`` of each
    interval's uncovered import in its window, at its own factor; the rest counts at the
    residual mix, or the interval's intensity without one. A window crossing the period
    boundary spreads over imports outside it: the bundle's span holds the period grown by
    every window meeting it (checked here), so every import a certificate meeting the
    period is spread over is in the bundle, and windows outside the span touch none of it.
    """
    period = report["period"]
    zone = ZoneInfo(period["timezone"])
    lo = dt.datetime.fromisoformat(period["start"]).date()
    hi = dt.datetime.fromisoformat(period["end"]).date()  # exclusive
    cs = report["certificates"]
    windows = [(dt.date.fromisoformat(c["valid_from"]), dt.date.fromisoformat(c["valid_to"]))
               for c in cs]
    want = _span(lo, hi, windows)
    have = (dt.date.fromisoformat(span["from"]), dt.date.fromisoformat(span["to"]))
    if have != want or span["timezone"] != period["timezone"]:
        raise BundleError(
            "intervals.json",
            f"span {span['from']} .. {span['to']} but the period and the certificate windows "
            f"need {want[0]} .. {want[1]}",
        )
    days = [_local(r["start_utc"], zone).date() for r in rows]
    outside = [i for i, d in enumerate(days) if not have[0] <= d < have[1]]
    if outside:
        r = rows[outside[0]]
        raise BundleError(f"interval row {outside[0]} ({r['start_utc']})", "outside the span")
    certs = sorted(
        (c["valid_to"], c["valid_from"], c["id"], w, c)
        for c, w in zip(cs, windows, strict=True)
        if w[0] < have[1] and w[1] >= have[0]
    )
    uncovered = [float(r["import_kwh"]) for r in rows]
    kg = [0.0] * len(rows)
    for *_, (first, last), c in certs:
        inside = [i for i, d in enumerate(days) if first <= d <= last]
        eligible = sum(uncovered[i] for i in inside)
        share = min(1.0, c["mwh"] * 1000.0 / eligible) if eligible > 0 else 0.0
        for i in inside:
            covered = uncovered[i] * share
            uncovered[i] -= covered
            kg[i] += covered * c["ci_g_per_kwh"] / 1000.0
    rm = report["factors"]["residual_mix_g_per_kwh"]
    for i, r in enumerate(rows):
        kg[i] += max(uncovered[i], 0.0) * (r["ci_g_per_kwh"] if rm is None else rm) / 1000.0
    in_period = [i for i, d in enumerate(days) if lo <= d < hi]
    total = round(sum(kg[i] for i in in_period), DECIMALS)
    if abs(report["totals"]["market_kg_co2"] - total) > 1e-6 * max(1, len(rows)):
        raise BundleError(
            "report.json",
            f"totals market_kg_co2 = {report['totals']['market_kg_co2']} but the rows and "
            f"certificates give {total}",
        )
    crossing = sum(1 for *_, (first, last), _ in certs if first < lo or last >= hi)
    return f"re-derived from {len(certs)} certificate(s)" + (
        f", {crossing} crossing the period boundary ({len(rows) - len(in_period)} rows "
        f"outside the period)" if crossing else ""
    )


def check_chained_certificates(doc: dict, report: dict) -> None:
    """The report's certificates marked ``chain`` are the instruments' certificate records."""
    want = [
        (b["certificate_id"], b["claimed_from"], b["claimed_to"], float(b["mwh"]),
         float(b["ci_g_per_kwh"]))
        for r in doc["records"] if r["kind"] == "certificate" for b in [r["body"]]
    ]
    have = [
        (c["id"], c["valid_from"], c["valid_to"], float(c["mwh"]), float(c["ci_g_per_kwh"]))
        for c in report["certificates"] if c.get("source") == "chain"
    ]
    if have != want:
        raise BundleError("report.json", f"certificates from the chain {have} but the "
                          f"instruments hold {want}")


def check_bill(period: list[dict], doc: dict, report: dict) -> int:
    """The report's reconciliation against the stored bill (the latest record of each month):
    each month's ledger import from the rows, the bill and their difference. Returns the
    number of months reconciled."""
    zone = ZoneInfo(report["period"]["timezone"])
    bill = {}
    for r in doc["records"]:
        if r["kind"] == "bill":
            bill[r["body"]["month"]] = float(r["body"]["import_kwh"])
    recon = report.get("reconciliation")
    if not bill:
        if recon is not None:
            raise BundleError("report.json", "a reconciliation but no bill in the instruments")
        return 0
    if recon is None:
        raise BundleError("report.json", "the instruments hold a utility bill but the report "
                          "has no reconciliation")
    ledger: dict[str, float] = {}
    for r in period:
        m = _local(r["start_utc"], zone).strftime("%Y-%m")
        ledger[m] = ledger.get(m, 0.0) + float(r["import_kwh"])
    for row in recon["months"]:
        m = row["month"]
        kwh, billed = round(ledger.get(m, 0.0), DECIMALS), bill.get(m)
        diff = None if billed is None else round(kwh - billed, DECIMALS)
        got = (row["ledger_import_kwh"], row["bill_import_kwh"], row["difference_kwh"])
        close = abs(got[0] - kwh) <= 1e-6 * max(1, len(period)) and got[1] == billed and (
            (diff is None and got[2] is None)
            or (diff is not None and got[2] is not None and abs(got[2] - diff) <= 1e-5)
        )
        if not close:
            raise BundleError(
                "report.json",
                f"reconciliation {m}: ledger {got[0]} kWh, bill {got[1]}, difference {got[2]} "
                f"but the rows and the stored bill give {kwh}, {billed}, {diff}",
            )
    return len(recon["months"])


def check_instruments(doc: dict) -> None:
    expected = GENESIS
    for i, r in enumerate(doc["records"]):
        where = f"instrument record {i} (seq {r.get('seq')}, {r.get('kind')})"
        body = {"body": r["body"], "kind": r["kind"], "recorded_utc": r["recorded_utc"]}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if r["prev_hash"] != expected:
            raise BundleError(where, "prev_hash is not the previous record's hash")
        if _sha(expected + text) != r["record_hash"]:
            raise BundleError(where, "edited: record_hash does not match")
        expected = r["record_hash"]


def check_checkpoint(
    name: str, doc: dict, rows: list[dict], first: int, inst: list[dict], trusted: str | None
) -> tuple[int, BundleError] | None:
    """The signature (raises) and the first interval row or instrument record that differs
    from the checkpoint (returned with its index; instruments sort after intervals)."""
    body = doc["checkpoint"]
    key = body["public_key"]
    if trusted and key != trusted.lower():
        raise BundleError(name, f"signed by key {key[:16]}..., not the trusted key")
    message = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if not ed25519_verify(bytes.fromhex(key), message.encode(), bytes.fromhex(doc["signature"])):
        raise BundleError(name, "the Ed25519 signature does not match: the file was edited")
    for chain, have, start in (("intervals", rows, first), ("instruments", inst, 0)):
        state = body["chains"].get(chain)
        if state is None:
            continue
        proved = base64.b64decode(state["fingerprints"])
        w = FINGERPRINT_BYTES
        for i, r in enumerate(have):
            j = start + i
            if j >= state["records"]:
                break
            if bytes.fromhex(r["record_hash"][: 2 * w]) != proved[j * w : (j + 1) * w]:
                label = (
                    f"interval row {j} ({r['start_utc']})"
                    if chain == "intervals"
                    else (f"instrument record {j}")
                )
                found = BundleError(label, f"differs from the checkpoint of {body['created_utc']}")
                return (j if chain == "intervals" else 10**12 + j), found
    return None


def verify(folder: Path, trusted: str | None) -> dict:
    """Everything above on one bundle; returns a summary or raises ``BundleError``."""
    manifest = check_manifest(folder)
    intervals = json.loads((folder / "intervals.json").read_text(encoding="utf-8"))
    rows, failure = check_intervals(intervals)
    found = [] if failure is None else [failure]
    instruments = json.loads((folder / "instruments.json").read_text(encoding="utf-8"))
    names = sorted(n for n in manifest["files"] if n.startswith("checkpoints/"))
    for name in names:
        doc = json.loads((folder / name).read_text(encoding="utf-8"))
        first = int(intervals["first_index"])
        failure = check_checkpoint(name, doc, rows, first, instruments["records"], trusted)
        found += [] if failure is None else [failure]
    if found:
        raise min(found, key=lambda f: f[0])[1]
    check_instruments(instruments)
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    period = period_rows(rows, report)
    check_totals(period, report)
    table = read_factors((folder / "factors.csv").read_text(encoding="utf-8"))
    refs = check_factors(period, table, report)
    market = check_market(rows, intervals["span"], report)
    check_chained_certificates(instruments, report)
    bill_months = check_bill(period, instruments, report)
    return {
        "ok": True,
        "period": manifest["period"],
        "intervals": len(period),
        "rows_outside_period": len(rows) - len(period),
        "instruments": len(instruments["records"]),
        "checkpoints": len(names),
        "factor_references": refs,
        "bill_months": bill_months,
        "market_kg_co2": market,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", help="the folder `dispatch carbon export` wrote")
    parser.add_argument("--public-key", help="trusted checkpoint key (64 hex digits)")
    args = parser.parse_args(argv)
    try:
        summary = verify(Path(args.bundle), args.public_key)
    except BundleError as exc:
        print(json.dumps({"ok": False, "where": exc.where, "reason": exc.reason}))
        return 3
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(json.dumps({"ok": False, "where": args.bundle, "reason": f"unreadable: {exc!r}"}))
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
