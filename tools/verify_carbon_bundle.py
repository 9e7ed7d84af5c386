#!/usr/bin/env python3
"""Verify a carbon-ledger export bundle with the Python standard library alone.

Usage::

    python3 verify_carbon_bundle.py BUNDLE_DIR [--public-key HEX]

A bundle is what ``dispatch carbon export --period P --out DIR`` writes: ``manifest.json``
(the SHA-256 of every file), ``intervals.json`` (the period's ledger rows and the hash of the
row before them), ``instruments.json`` (the whole chain of carbon instruments),
``checkpoints/*.json`` (signed checkpoints) and the report (``report.json``, ``.csv``,
``.html``). This file re-derives, from the bundle alone and independently of the
``dispatch`` package:

1. every file's SHA-256 against the manifest;
2. each interval record's ``inputs_hash`` and ``record_hash`` (sorted-key JSON without spaces,
   floats with exactly 6 decimals, ``-0`` as ``0``; ``record_hash = sha256(prev_hash +
   canonical)``) and the links between them, from the stated predecessor hash; a record
   with an empty ``provenance`` is format 1 (written before provenance was kept), whose
   canonical forms leave that field out;
3. each record's location-based emissions (``import_kwh * ci_g_per_kwh / 1000`` kg, to the
   quantisation of the values) and the report's totals (intervals, import kWh, location kg),
   and the market-based total from the rows, the report's certificates and residual mix
   (when every certificate valid in the period lies inside it; the summary says which);
4. the instruments' hash chain (``sha256(prev_hash + canonical({body, kind, recorded_utc}))``);
5. each checkpoint's Ed25519 signature (RFC 8032, written out below) and that the rows it
   proves, where the bundle holds them, have its fingerprints (first 8 bytes of each hash).

Exit status: 0 when everything checks out, 3 naming the first row or record that does not,
2 for a bundle that cannot be read.
"""

from __future__ import annotations

import argparse
import base64
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
        v1 = not row.get("provenance")  # format 1: written before provenance, not hashed
        names = [f for f in hashed if not (v1 and f == "provenance")]
        inputs_names = [*INPUT_FIELDS, *([] if v1 else ["provenance"])]
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
        expected = row["record_hash"]
    return rows, None


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


def _local_day(text: str, zone) -> dt.date:
    t = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return t.astimezone(zone).date()


def check_market(rows: list[dict], report: dict) -> str:
    """Re-derive the period's market-based kg CO2 (certificates pro rata to the uncovered
    imports in their windows, soonest to expire first; the rest at the residual mix, or at
    the interval's intensity without one) and compare with the report's total. Exact only
    when every certificate whose window meets the period lies inside it (then all the
    imports it is spread over are in the bundle); otherwise it says why it was not done."""

    period = report["period"]
    zone = ZoneInfo(period["timezone"])
    lo = dt.datetime.fromisoformat(period["start"]).date()
    hi = dt.datetime.fromisoformat(period["end"]).date()  # exclusive
    certs = []
    for c in report["certificates"]:
        first, last = dt.date.fromisoformat(c["valid_from"]), dt.date.fromisoformat(c["valid_to"])
        if last < lo or first >= hi:
            continue  # no interval of the period is in its window
        if first < lo or last >= hi:
            return f"not re-derived: certificate {c['id']} is valid beyond the period"
        certs.append((c["valid_to"], c["valid_from"], c["id"], first, last, c))
    days = [_local_day(r["start_utc"], zone) for r in rows]
    uncovered = [float(r["import_kwh"]) for r in rows]
    kg = [0.0] * len(rows)
    for *_, first, last, c in sorted(certs, key=lambda x: x[:3]):
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
    total = round(sum(kg), DECIMALS)
    if abs(report["totals"]["market_kg_co2"] - total) > 1e-6 * max(1, len(rows)):
        raise BundleError(
            "report.json",
            f"totals market_kg_co2 = {report['totals']['market_kg_co2']} but the rows and "
            f"certificates give {total}",
        )
    return f"re-derived from {len(certs)} certificate(s)"


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
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    check_totals(rows, report)
    market = check_market(rows, report)
    check_instruments(instruments)
    return {
        "ok": True,
        "period": manifest["period"],
        "intervals": len(rows),
        "instruments": len(instruments["records"]),
        "checkpoints": len(names),
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
