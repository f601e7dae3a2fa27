"""simgate.parking: the Omniverse Kit extension that streams parking events to the simgate gateway.

Kit imports this module (``[[python.module]] name = "simgate.parking"`` in config/extension.toml) and
starts every ``omni.ext.IExt`` subclass it finds here. Outside Kit (plain pytest) ``omni`` is not
importable, so only the plain modules (settings, gates, images, events, outbox, spool, worker,
transports, session, stage_reader) are used there.
"""

try:
    import omni.ext  # noqa: F401  (present only inside Kit, or with the test stand-ins)
except ImportError:  # plain Python: the adapter is not loaded
    pass
else:
    from .extension import ParkingGateExtension  # noqa: F401
