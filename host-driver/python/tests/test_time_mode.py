"""Time-mode scan descriptions (offline): what `FlyScanInfo.timed` accepts and refuses, and
the default timeout it gets."""
import pytest
from pydantic import ValidationError

from flyscan_bluesky import FlyScanInfo
from flyscan_bluesky.device import ScanMode
from flyscan_bluesky.plans import DEFAULT_POINT_TIME, default_timeout


def test_timed_scans_carry_their_period_and_window():
    info = FlyScanInfo.timed(0.0005, 2000, gate=(100, 900), channel_mask=3)
    assert info.mode is ScanMode.TIME and info.period == 0.0005 and info.gate == (100, 900)
    assert info.expected_points == 2000
    # Without a window the scan lasts a period a point; with one, the motion decides.
    assert default_timeout(FlyScanInfo.timed(0.0005, 2000)) == pytest.approx(2 * 1.0 + 60)
    assert default_timeout(info) == pytest.approx(2 * 2000 * DEFAULT_POINT_TIME + 60)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"gate": (900, 100)},  # upside down
        {"gate": (5, 5)},  # empty
        {"passes": 2, "direction": "Bidirectional"},
        {"period": 0.0},
    ],
)
def test_timed_scans_refuse_what_the_driver_would(kwargs):
    args = {"period": kwargs.pop("period", 0.001), "npoints": 10}
    with pytest.raises(ValidationError):
        FlyScanInfo.timed(**args, **kwargs)


def test_a_window_is_for_time_mode_only():
    with pytest.raises(ValidationError):
        FlyScanInfo.start_step_count(0, 10, 5, gate=(0, 100))
