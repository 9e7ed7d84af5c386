"""The ``[carbon]`` section: the grid's carbon intensity, where the daemon takes it from, its
price in the objective, and the carbon-ledger settings (certificates, neutrality target)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from dispatch.config.base import NonNegFloat, PosFloat, _Model


class CertificateSection(_Model):
    """One contractual instrument (``[[carbon.certificates]]``): a green certificate or a PPA.

    It covers up to ``mwh`` of the site's grid imports in the intervals whose start lies in
    the inclusive site-local date range ``valid_from``..``valid_to``; covered energy counts at
    ``ci_g_per_kwh`` (0 for renewable certificates) in the market-based method.
    """

    id: str = Field(min_length=1, description="certificate or contract id, unique")
    instrument: Literal["green_certificate", "ppa"] = "green_certificate"
    valid_from: dt.date
    valid_to: dt.date
    mwh: PosFloat = Field(description="energy the instrument covers (MWh)")
    ci_g_per_kwh: NonNegFloat = Field(0.0, description="emission factor of the covered energy")

    @model_validator(mode="after")
    def _dates(self) -> CertificateSection:
        if self.valid_to < self.valid_from:
            raise ValueError(
                f"certificate {self.id!r}: valid_to = {self.valid_to} is before "
                f"valid_from = {self.valid_from}"
            )
        return self


class CarbonSection(_Model):
    """Grid carbon intensity, its price in the objective, and the carbon-ledger settings."""

    grid_ci_g_per_kwh: NonNegFloat = Field(
        description="grid emission factor used when no series is given"
    )
    hourly_profile_g_per_kwh: list[NonNegFloat] | None = Field(
        None, description="24 values by site-local hour; replaces the constant factor"
    )
    price_per_kg: NonNegFloat = Field(0.0, description="carbon price in currency per kg CO2")
    residual_mix_g_per_kwh: NonNegFloat | None = Field(
        None,
        description="market-based factor of imports no certificate covers; "
        "unset = the location-based intensity of each interval",
    )
    certificates: list[CertificateSection] = Field(
        [], description="green certificates and PPAs for the market-based method"
    )
    neutrality_target_year: Annotated[int, Field(ge=2000, le=2100)] | None = Field(
        None,
        description="calendar year from which the Scope 2 electricity CO2 balance (minus "
        "offsets retired) must be zero; not ISO 14068-1 neutrality (Scopes 1 and 3 are not "
        "in the ledger)",
    )
    neutrality_basis: Literal["market", "location"] = Field(
        "market", description="which Scope 2 method the net balance uses"
    )
    source: Literal["config", "csv", "electricity_maps"] = Field(
        "config",
        description="where the daemon's plans take the intensity from: 'config' (the factor "
        "or profile above, known ahead), 'csv' (a measured series another job keeps "
        "current, csv_path: known up to now, forecast beyond as the same time a day "
        "earlier) or 'electricity_maps' (its forecast; its token in the environment "
        "variable electricity_maps_token_env). Whatever fails falls back to 'config' and "
        "says so",
    )
    csv_path: str | None = Field(None, description="the intensity CSV (source = 'csv')")
    electricity_maps_zone: str | None = Field(None, description="zone key, e.g. 'DE'")
    electricity_maps_url: str | None = Field(None, description="API root ending in /v3")
    electricity_maps_token_env: str = Field(
        "ELECTRICITY_MAPS_TOKEN", description="environment variable holding the API token"
    )
    factor_table_path: str | None = Field(
        None,
        description="CSV of grid factors added to the shipped table (key, source, year, region, "
        "basis, g_per_kwh, published), e.g. provincial factors; `report --restate KEY`",
    )
    grid_factor_key: str | None = Field(
        None,
        description="key of grid_ci_g_per_kwh in the factor table (`dispatch carbon factors`; "
        "its value must equal grid_ci_g_per_kwh): each ledger record hashes a reference to "
        "that entry. Unset: the reference names the configured value alone",
    )
    checkpoint_key_path: str | None = Field(
        None,
        description="Ed25519 private key (PEM, from `dispatch carbon keygen`) that signs "
        "ledger checkpoints; keep it outside the state directory",
    )
    checkpoint_dir: str | None = Field(
        None,
        description="folder where the daemon writes a signed checkpoint once a day (site-local "
        "date, checkpoint-YYYY-MM-DD.json) with checkpoint_key_path; outside the state "
        "directory. Copy it off the box",
    )
    checkpoint_public_key: str | None = Field(
        None,
        pattern=r"^[0-9a-fA-F]{64}$",
        description="trusted public key (64 hex digits): `verify --checkpoint` accepts only "
        "checkpoints it signed; shown in every report",
    )

    @model_validator(mode="after")
    def _source(self) -> CarbonSection:
        if self.source == "csv" and not self.csv_path:
            raise ValueError("carbon.source = 'csv' needs carbon.csv_path")
        if self.source == "electricity_maps" and not self.electricity_maps_zone:
            raise ValueError("carbon.source = 'electricity_maps' needs electricity_maps_zone")
        return self

    @field_validator("hourly_profile_g_per_kwh")
    @classmethod
    def _profile(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and len(v) != 24:
            raise ValueError(f"needs 24 hourly values, got {len(v)}")
        return v

    @field_validator("certificates")
    @classmethod
    def _unique_certificates(cls, v: list[CertificateSection]) -> list[CertificateSection]:
        ids = [c.id for c in v]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"certificate ids must be unique, repeated: {dup}")
        return v
