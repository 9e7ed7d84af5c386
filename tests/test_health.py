"""``site_health``: the site's level and reasons from what a cycle knows, exactly."""

from __future__ import annotations

from dispatch.daemon.health import Health, site_health


def test_ok_warning_and_fault_with_their_reasons() -> None:
    assert site_health({"bess": 0}, None, 0, {}) == Health()
    assert site_health({"bess": 1, "meter": 0}, None, 2, {"store:cycle": 3}) == Health(
        "warning",
        (
            "device bess retrying",
            "battery off its setpoint for 2 cycle(s)",
            "store:cycle failing (3x)",
        ),
    )
    h = site_health({"bess": 2}, "safe: device fault: bess: timeout", 0, {"job:plan": 1})
    assert h.level == "fault" and h.code == 2
    assert h.reasons == (
        "safe: device fault: bess: timeout",
        "device bess failed",
        "job:plan failing (1x)",
    )
    assert h.describe().startswith("fault: safe: device fault")
