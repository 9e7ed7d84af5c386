"""Pure market-based Scope 2 accounting: certificates allocated to imports, residual mix.

Role: spread the configured energy attribute certificates over the intervals' grid imports and
price the rest at the residual mix (method note ``"market"`` of
``dispatch.carbon.accounting.METHOD_NOTES``). Works on the per-interval accounts of
``accounting.interval_accounting`` or the ledger without importing them. May import only
``dispatch.types``, ``dispatch.config``, numpy and pandas; no I/O, no wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dispatch.config import CertificateSection, SiteConfig

__all__ = ["CertificateUse", "allocate_certificates", "certificate_window", "market_based"]


@dataclass(frozen=True)
class CertificateUse:
    """How much of one certificate the market-based method allocated.

    Attributes
    ----------
    id : str
        Certificate id.
    mwh : float
        Its face value (MWh).
    allocated_mwh : float
        Imports it covered among the intervals given (MWh).
    eligible_import_mwh : float
        Imports in its validity window still uncovered when it was allocated (MWh).
    """

    id: str
    mwh: float
    allocated_mwh: float
    eligible_import_mwh: float

    @property
    def unused_mwh(self) -> float:
        """Face value not matched by imports (MWh); it is not carried to other periods."""
        return self.mwh - self.allocated_mwh


def certificate_window(cert: CertificateSection, index: pd.DatetimeIndex, tz: str) -> np.ndarray:
    """Boolean mask of the intervals whose start lies in the certificate's local date range."""
    lo = pd.Timestamp(cert.valid_from).tz_localize(tz)
    hi = (pd.Timestamp(cert.valid_to) + pd.Timedelta(days=1)).tz_localize(tz)
    return np.asarray((index >= lo) & (index < hi))


def allocate_certificates(
    import_kwh: pd.Series, certificates: list[CertificateSection], tz: str
) -> tuple[np.ndarray, list[CertificateUse]]:
    """Spread certificates over intervals pro rata to the uncovered imports in their window.

    Certificates are taken in order of ``valid_to``, then ``valid_from``, then ``id`` (the
    soonest to expire first). Each covers the same fraction
    ``min(1, mwh * 1000 / uncovered imports in its window)`` of every interval's still
    uncovered import in its window; what exceeds the imports stays unused.

    Parameters
    ----------
    import_kwh : pandas.Series
        Grid imports per interval (kWh), indexed by UTC interval start.
    certificates : list of CertificateSection
        The instruments.
    tz : str
        Time zone of the certificates' dates (the site's).

    Returns
    -------
    tuple
        Covered kWh per interval per certificate stacked as ``(n_cert, n)`` (same order as
        ``certificates``), and one ``CertificateUse`` per certificate in that order.
    """
    index = pd.DatetimeIndex(import_kwh.index)
    uncovered = import_kwh.to_numpy(float).copy()
    covered = np.zeros((len(certificates), len(uncovered)))
    order = sorted(
        range(len(certificates)),
        key=lambda k: (certificates[k].valid_to, certificates[k].valid_from, certificates[k].id),
    )
    uses: dict[int, CertificateUse] = {}
    for k in order:
        cert = certificates[k]
        mask = certificate_window(cert, index, tz)
        eligible = float(uncovered[mask].sum())
        share = min(1.0, cert.mwh * 1000.0 / eligible) if eligible > 0 else 0.0
        covered[k, mask] = uncovered[mask] * share
        uncovered[mask] -= covered[k, mask]
        uses[k] = CertificateUse(cert.id, cert.mwh, covered[k].sum() / 1000.0, eligible / 1000.0)
    return covered, [uses[k] for k in range(len(certificates))]


def market_based(
    accounts: pd.DataFrame,
    config: SiteConfig,
    certificates: list[CertificateSection] | None = None,
) -> tuple[pd.DataFrame, list[CertificateUse]]:
    """Market-based Scope 2 emissions with the configured certificates and residual mix.

    Covered imports count at each certificate's own factor (0 for green certificates); the
    uncovered rest at ``carbon.residual_mix_g_per_kwh``, or, when no residual mix is
    configured, at the interval's location-based intensity. The allocation depends on all
    imports in a certificate's window, so figures for a window not yet closed are provisional.

    Parameters
    ----------
    accounts : pandas.DataFrame
        Indexed by UTC interval start, with ``import_kwh`` and ``ci_g_per_kwh`` (as from
        ``interval_accounting`` or the ledger).
    config : SiteConfig
        ``carbon.certificates``, ``carbon.residual_mix_g_per_kwh`` and ``site.timezone``.
    certificates : list of CertificateSection, optional
        The instruments to allocate (default: ``carbon.certificates`` of the config); the
        reports pass the config's and those in the chained instruments.

    Returns
    -------
    tuple
        A frame with ``covered_kwh``, ``residual_kwh``, ``residual_ci_g_per_kwh`` and
        ``market_kg_co2`` per interval, and the use of each certificate.
    """
    certs = list(config.carbon.certificates if certificates is None else certificates)
    imports = accounts["import_kwh"].astype(float)
    covered, uses = allocate_certificates(imports, certs, config.site.timezone)
    factors = np.array([c.ci_g_per_kwh for c in certs], dtype=float)
    covered_kwh = covered.sum(axis=0)
    residual_kwh = np.maximum(imports.to_numpy() - covered_kwh, 0.0)
    rm = config.carbon.residual_mix_g_per_kwh
    residual_ci = (
        accounts["ci_g_per_kwh"].to_numpy(float) if rm is None else np.full(len(imports), rm)
    )
    kg = (residual_kwh * residual_ci + factors @ covered) / 1000.0
    out = pd.DataFrame(
        {
            "covered_kwh": covered_kwh,
            "residual_kwh": residual_kwh,
            "residual_ci_g_per_kwh": residual_ci,
            "market_kg_co2": kg,
        },
        index=accounts.index,
    )
    return out, uses
