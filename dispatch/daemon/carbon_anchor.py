"""The carbon ledger's anchor off the box: its chain head after each append, a signed
checkpoint once a day.

Role: after the ledger job appended records, publish the unsigned chain state of both chains
(``head_doc``: records, head hash, ``end_utc``, per-row fingerprints, as in a checkpoint)
retained on MQTT ``<prefix>/carbon/head``; the REST API serves the same document at
``GET /api/v1/carbon/head``. Someone who keeps a copy of it (a broker, a SCADA historian)
holds the head a later forger must match. With ``[carbon] checkpoint_key_path`` set and
readable, the first append of each site-local day signs a checkpoint (``DailyCheckpoints``)
of the verified ledger into ``[carbon] checkpoint_dir`` (``checkpoint-YYYY-MM-DD.json``) and
publishes it on ``<prefix>/carbon/checkpoint``; a ledger that does not verify is never
signed (an error event says why). The key and the folder must lie outside the state
directory and the store's folder (whoever can edit the ledger could otherwise sign a forgery
or replace the day's file). Imports ``dispatch.carbon``'s ``audit`` and ``checkpoint``,
``store``, ``config`` and ``types``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from dispatch.carbon import audit, checkpoint
from dispatch.carbon.chain import TIME_FORMAT
from dispatch.config import SiteConfig
from dispatch.daemon.runtime import Services, store_event
from dispatch.store import Store
from dispatch.types import ConfigError, InputError

if TYPE_CHECKING:
    from dispatch.daemon.mqtt import MqttLink

log = logging.getLogger("dispatch.daemon")
HEAD_FORMAT = "dispatch-carbon-head/1"

__all__ = ["HEAD_FORMAT", "Anchor", "DailyCheckpoints", "head_doc", "load_signer"]


def head_doc(store: Store, now: dt.datetime) -> dict[str, Any]:
    """The unsigned chain state of the ledger and the carbon instruments (store thread).

    Returns
    -------
    dict
        ``{"format": HEAD_FORMAT, "time_utc": TEXT, "chains": {"intervals": STATE,
        "instruments": STATE}}`` with ``STATE`` as in a checkpoint (``records``, ``head``,
        ``end_utc``, ``fingerprints``).
    """
    chains = checkpoint.ledger_chains(store.ledger(), store.instruments())
    return {"format": HEAD_FORMAT, "time_utc": now.strftime(TIME_FORMAT), "chains": chains}


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _outside(what: str, key: str, name: str, homes: Sequence[Path]) -> Path:
    path = Path(name).expanduser().resolve()
    for home in homes:
        if _inside(path, home):
            raise ConfigError(
                f"{what} {path} lies in {home}, beside the ledger: whoever can edit the ledger "
                "could forge what it anchors; keep it elsewhere",
                f"carbon.{key}",
            )
    return path


@dataclass
class DailyCheckpoints:
    """The daemon's signer: one checkpoint per site-local day.

    Attributes
    ----------
    key : Ed25519PrivateKey
        ``[carbon] checkpoint_key_path``, read once at start (``checkpoint.private_key``;
        typed ``Any`` here: ``cryptography`` has one home, ``dispatch.carbon.checkpoint``).
    folder : pathlib.Path or None
        ``[carbon] checkpoint_dir`` (None: published on MQTT only).
    timezone : str
        The site's time zone: the day changes at its midnight.
    signed_day : str or None
        The site-local date (``YYYY-MM-DD``) signed last.
    """

    key: Any
    folder: Path | None
    timezone: str
    signed_day: str | None = None

    def day(self, now: dt.datetime) -> str:
        """The site-local date of ``now``, ``YYYY-MM-DD``."""
        return now.astimezone(ZoneInfo(self.timezone)).date().isoformat()

    def file(self, day: str) -> Path | None:
        """Where the checkpoint of site-local ``day`` goes (None without a folder)."""
        return None if self.folder is None else self.folder / f"checkpoint-{day}.json"

    def due(self, now: dt.datetime) -> bool:
        """True when no checkpoint was signed on the site-local day of ``now`` (nor is a file
        of that day in the folder, e.g. from before a restart)."""
        day = self.day(now)
        if day == self.signed_day:
            return False
        path = self.file(day)
        if path is not None and path.exists():
            self.signed_day = day
            return False
        return True

    def sign(self, store: Store, now: dt.datetime) -> dict[str, Any]:
        """Verify the stored ledger and instruments, sign a checkpoint and write its file
        (store thread).

        Raises
        ------
        InputError
            When the ledger or the instruments do not verify (naming the row), or the file
            cannot be written.
        """
        when = now.strftime(TIME_FORMAT)
        rows = store.ledger(with_seq=True)
        check = audit.verify_rows(
            rows, head=store.ledger_head(), missing_triggers=store.missing_triggers(), now_utc=when
        )
        if not check.ok:
            raise InputError(
                f"the ledger does NOT verify ({check.kind} at row {check.index}: "
                f"{check.reason}): no checkpoint signed"
            )
        inst = store.instruments()
        held = audit.verify_instruments(inst, store.instruments_head())
        if not held.ok:
            raise InputError(
                f"the carbon instruments do NOT verify ({held.kind} at record "
                f"{held.index}: {held.reason}): no checkpoint signed"
            )
        doc = checkpoint.make_checkpoint(checkpoint.ledger_chains(rows, inst), when, self.key)
        day, path = self.day(now), self.file(self.day(now))
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("x", encoding="utf-8") as f:
                    f.write(json.dumps(doc, indent=1, sort_keys=True) + "\n")
            except OSError as exc:
                raise InputError(f"checkpoint {path}: cannot write it ({exc})") from None
        self.signed_day = day
        return doc


def load_signer(
    config: SiteConfig, store_path: str | Path, state_dir: str | Path | None
) -> DailyCheckpoints | None:
    """The daily signer of ``[carbon] checkpoint_key_path`` (None: not set, or unreadable,
    which is logged).

    Raises
    ------
    ConfigError
        When the key or ``checkpoint_dir`` lies in the state directory or the store's
        folder, or the file is not an Ed25519 key.
    """
    c = config.carbon
    homes = [Path(store_path).resolve().parent]
    if state_dir:
        homes.append(Path(state_dir).resolve())
    folder = None
    if c.checkpoint_dir:
        folder = _outside("checkpoint folder", "checkpoint_dir", c.checkpoint_dir, homes)
    if not c.checkpoint_key_path:
        return None
    path = _outside("signing key", "checkpoint_key_path", c.checkpoint_key_path, homes)
    try:
        pem = path.read_bytes()
    except OSError as exc:
        log.warning("carbon: key %s unreadable (%s): no daily checkpoints", path, exc.strerror)
        return None
    try:
        key = checkpoint.private_key(pem, f"key {path}")
    except InputError as exc:
        raise ConfigError(str(exc), "carbon.checkpoint_key_path") from None
    return DailyCheckpoints(key, folder, config.site.timezone)


class Anchor:
    """What the daemon exports after each ledger append.

    Parameters
    ----------
    signer : DailyCheckpoints or None
        The daily signer (None: no checkpoints).
    mqtt : MqttLink or None
        Where the head and checkpoints are published (None: MQTT off).
    """

    def __init__(self, signer: DailyCheckpoints | None, mqtt: MqttLink | None) -> None:
        self.signer, self.mqtt = signer, mqtt
        self.head: dict[str, Any] | None = None

    async def after_append(self, sv: Services) -> None:
        """Publish the chain head; sign the day's checkpoint when due (a refusal or a
        write failure is logged and stored as a ``checkpoint_failed`` event)."""
        now = sv.clock.now()
        self.head = await sv.storer(head_doc, sv.store, now)
        if self.mqtt is not None:
            self.mqtt.publish_json("carbon/head", self.head)
        s = self.signer
        if s is None or not s.due(now):
            return
        try:
            doc = await sv.storer(s.sign, sv.store, now)
        except InputError as exc:
            s.signed_day = s.day(now)  # said once a day, not at every append
            log.error("carbon checkpoint: %s", exc)
            await store_event(sv, "error", "checkpoint_failed", str(exc))
            return
        n = doc["checkpoint"]["chains"]["intervals"]["records"]
        log.info(
            "carbon checkpoint of %s signed: %d records, %s", s.day(now), n, s.file(s.day(now))
        )
        if self.mqtt is not None:
            self.mqtt.publish_json("carbon/checkpoint", doc)
