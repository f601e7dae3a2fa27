"""The generated wire-contract module (``simgate.v1.simgate_pb2``), imported so that Kit's hot reload cannot
break it.

Kit's hot reload unloads the extension's Python modules and imports them again. The generated module
registers ``simgate/v1/simgate.proto`` in protobuf's process-wide default descriptor pool when it is
imported; a second registration of a file whose content changed (the proto was regenerated while Kit ran)
is refused by protobuf ("duplicate file name"). Here the module is reused when it is still loaded, and when
the pool already holds the file, the message classes are rebuilt from the pool instead of registering it
again; the process then keeps the wire contract it first loaded, and says so.
"""

from __future__ import annotations

import importlib
import logging
import sys
import types

log = logging.getLogger(__name__)

PB2_MODULE = "simgate.v1.simgate_pb2"
PROTO_FILE = "simgate/v1/simgate.proto"


def _from_pool() -> types.ModuleType:
    from google.protobuf import descriptor_pool, message_factory
    from google.protobuf.internal import enum_type_wrapper

    file = descriptor_pool.Default().FindFileByName(PROTO_FILE)
    module = types.ModuleType(PB2_MODULE)
    module.__dict__["DESCRIPTOR"] = file
    for name, descriptor in file.message_types_by_name.items():
        module.__dict__[name] = message_factory.GetMessageClass(descriptor)
    for name, descriptor in file.enum_types_by_name.items():
        module.__dict__[name] = enum_type_wrapper.EnumTypeWrapper(descriptor)
        for value in descriptor.values:
            module.__dict__[value.name] = value.number
    return module


def load_pb2() -> types.ModuleType:
    module = sys.modules.get(PB2_MODULE)
    if module is not None:
        return module
    try:
        return importlib.import_module(PB2_MODULE)
    except TypeError as exc:  # the pool already holds a different build of the file: reuse the pool's
        sys.modules.pop(PB2_MODULE, None)
        module = _from_pool()
        sys.modules[PB2_MODULE] = module
        package = sys.modules.get("simgate.v1")
        if package is not None:
            setattr(package, "simgate_pb2", module)
        log.warning(
            "simgate: the wire contract changed since this process first loaded it (%s); the first one stays in "
            "use until Kit restarts", exc,
        )
        return module


simgate_pb2 = load_pb2()
