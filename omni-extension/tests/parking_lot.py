"""The parking-lot stage used by the tests lives with the Kit tests (so they can use it inside Kit)."""

from simgate.parking.tests.parking_lot import CAMERAS, GATES, TCPS, build_parking_lot  # noqa: F401
