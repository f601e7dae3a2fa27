"""omni.kit.test tests, run inside Kit (see docs/README.md). Kit's test runner imports this package and
collects the omni.kit.test.AsyncTestCase classes; outside Kit only parking_lot (the stage builder) is used."""

try:
    import omni.kit.test  # noqa: F401
except ImportError:  # plain Python (pytest): the Kit tests are not collected here
    pass
else:
    from .test_kit_extension import *  # noqa: F401,F403
