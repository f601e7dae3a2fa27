"""The parking-lot stage used by the tests lives with the Kit tests (so they can use it inside Kit)."""

from simgate.parking.tests.parking_lot import (  # noqa: F401
    CAMERAS, GATES, TCPS, build_parking_lot, make_rigid_body, make_trigger, populate_parking_lot,
)
