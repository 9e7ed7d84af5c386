"""``dispatch carbon export`` and the standalone verifier (``tools/verify_carbon_bundle.py``,
run by an interpreter without site-packages: standard library only). The verifier passes an
intact bundle, names the first bad row of each tampered copy, and agrees with ``dispatch
carbon verify`` on bundles of tampered stores."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dispatch.__main__ import main
from dispatch.carbon import chain, checkpoint
from tests import test_carbon_tamper as tamper
from tests import test_cli_carbon as cli_site

ROOT = Path(__file__).resolve().parents[1]
VERIFIER = ROOT / "tools" / "verify_carbon_bundle.py"
site = cli_site.site
signed_site = tamper.signed_site  # 8 intervals, 3 instruments, a checkpoint, its public key


def standalone(bundle: Path, *args: str) -> tuple[int, dict]:
    """The verifier in an isolated interpreter without site-packages (``-I -S``)."""
    out = subprocess.run(
        [sys.executable, "-I", "-S", str(VERIFIER), str(bundle), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.returncode, json.loads(out.stdout)


def export(cfg: Path, cp: Path, out: Path, *extra: str, capsys=None) -> None:
    code = main(
        [
            "carbon",
            "export",
            "--config",
            str(cfg),
            "--period",
            "2026-06",
            "--out",
            str(out),
            "--checkpoint",
            str(cp),
            *extra,
        ]
    )
    assert code == 0
    if capsys is not None:
        capsys.readouterr()


def test_the_ed25519_of_the_verifier_agrees_with_cryptography():
    sys.path.insert(0, str(VERIFIER.parent))
    try:
        import verify_carbon_bundle as v
    finally:
        sys.path.remove(str(VERIFIER.parent))
    for n in range(8):
        key = checkpoint.private_key(checkpoint.generate_key(), "k")
        public = bytes.fromhex(checkpoint.public_key_hex(key))
        message = bytes(range(n * 9))
        sig = key.sign(message)
        assert v.ed25519_verify(public, message, sig)
        assert not v.ed25519_verify(public, message + b"!", sig)
        assert not v.ed25519_verify(public, message, sig[:40] + bytes([sig[40] ^ 1]) + sig[41:])


def test_an_intact_bundle_verifies_off_the_box(signed_site, tmp_path: Path, capsys):
    cfg, cp, public = signed_site
    out = tmp_path / "bundle"
    export(cfg, cp, out, capsys=capsys)
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["files"]) == {
        "intervals.json",
        "instruments.json",
        "factors.csv",
        "report.json",
        "report.csv",
        "report.html",
        f"checkpoints/00-{cp.name}",
    }
    code, doc = standalone(out, "--public-key", public)
    assert (code, doc) == (
        0,
        {
            "ok": True,
            "period": "2026-06",
            "intervals": 8,
            "rows_outside_period": 0,
            "instruments": 4,
            "checkpoints": 1,
            "factor_references": 1,
            "bill_months": 1,
            "market_kg_co2": "re-derived from 1 certificate(s)",
        },
    )
    assert (
        main(["carbon", "export", "--config", str(cfg), "--period", "2026-06", "--out", str(out)])
        == 1
    )
    assert "is not empty" in capsys.readouterr().err


def rewrite(bundle: Path, name: str, edit: Callable[[dict], None], manifest: bool = True) -> None:
    """Edit one JSON file of a bundle; the forger also recomputes the manifest."""
    path = bundle / name
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    if manifest:
        m = json.loads((bundle / "manifest.json").read_text())
        m["files"][name] = hashlib.sha256(path.read_bytes()).hexdigest()
        (bundle / "manifest.json").write_text(json.dumps(m))


FIELDS = list(chain.RECORD_FIELDS)
IMPORT = FIELDS.index("import_kwh")


def set_import(doc: dict) -> None:
    doc["records"][2][IMPORT] = 1.0


def rechain_tail(doc: dict) -> None:
    records = [chain.IntervalRecord(*r) for r in doc["records"]]
    records[2] = records[2]._replace(import_kwh=1.0, location_kg_co2=0.5703)
    doc["records"] = [list(r) for r in chain.chain(records, doc["prev_hash"])]


def drop_row(doc: dict) -> None:
    del doc["records"][3]


def edit_instrument(doc: dict) -> None:
    doc["records"][1]["body"]["tonnes"] = 120.0


def edit_bill(doc: dict) -> None:
    doc["records"][3]["body"]["import_kwh"] = 1000.0


def forge_reconciliation(doc: dict) -> None:  # the bill said 800 kWh; as if it said 1000
    doc["reconciliation"]["months"][0].update(bill_import_kwh=1000.0, difference_kwh=-200.0)


def edit_factor_ref(doc: dict) -> None:  # the recorded factor made the 2022 national one
    ref = doc["records"][2][FIELDS.index("factor_ref")]
    doc["records"][2][FIELDS.index("factor_ref")] = ref.replace("570.3", "536.6")


def edit_total(doc: dict) -> None:
    doc["totals"]["location_kg_co2"] = 1.0


def edit_signed(doc: dict) -> None:
    doc["checkpoint"]["chains"]["intervals"]["records"] = 7


@pytest.mark.parametrize(
    ("name", "edit", "manifest", "where"),
    [
        ("intervals.json", set_import, False, "file intervals.json"),
        ("intervals.json", set_import, True, "interval row 2 (2026-06-01T00:30:00Z)"),
        ("intervals.json", rechain_tail, True, "interval row 2 (2026-06-01T00:30:00Z)"),
        ("intervals.json", drop_row, True, "interval row 3 (2026-06-01T01:00:00Z)"),
        ("instruments.json", edit_instrument, True, "instrument record 1 (seq 2, retirement)"),
        ("instruments.json", edit_bill, True, "instrument record 3 (seq 4, bill)"),
        ("report.json", forge_reconciliation, True, "report.json"),
        ("intervals.json", edit_factor_ref, True, "interval row 2 (2026-06-01T00:30:00Z)"),
        ("report.json", edit_total, True, "report.json"),
        ("checkpoints/00-", edit_signed, True, "checkpoints/00-"),
    ],
)
def test_each_tampered_bundle_copy_is_named(
    signed_site, tmp_path, capsys, name, edit, manifest, where
):
    cfg, cp, public = signed_site
    out = tmp_path / "bundle"
    export(cfg, cp, out, capsys=capsys)
    if name == "checkpoints/00-":
        name = f"checkpoints/00-{cp.name}"
        where = name
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    rewrite(copy, name, edit, manifest)
    code, doc = standalone(copy, "--public-key", public)
    assert (code, doc["ok"], doc["where"]) == (3, False, where), doc["reason"]
    assert standalone(out, "--public-key", public)[0] == 0  # the original is untouched


@pytest.mark.parametrize(
    "tampered",
    [
        "edit input",
        "edit derived",
        "delete",
        "swap",
        "recompute one row's hashes",
        "rewrite the tail with the head",
    ],
)
def test_the_verifier_agrees_with_dispatch_verify_on_tampered_stores(
    signed_site, tmp_path, capsys, tampered
):
    cfg, cp, public = signed_site
    how, _, index, _, _ = tamper.TABLE[tampered]
    how(cfg)
    assert (
        main(
            [
                "carbon",
                "verify",
                "--config",
                str(cfg),
                "--checkpoint",
                str(cp),
                "--public-key",
                public,
                "--json",
            ]
        )
        == 3
    )
    assert json.loads(capsys.readouterr().out)["index"] == index
    out = tmp_path / "bundle"
    export(cfg, cp, out, "--allow-broken", capsys=capsys)
    assert json.loads((out / "manifest.json").read_text())["verified_on_export"]["ok"] is False
    code, doc = standalone(out, "--public-key", public)
    assert (code, doc["where"].split(" (")[0]) == (3, f"interval row {index}"), doc["reason"]
