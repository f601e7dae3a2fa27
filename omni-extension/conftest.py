"""pytest run on the whole folder (`pytest omni-extension`): the omni.kit.test suite inside the extension
imports omni/carb and runs inside Kit only (see exts/simgate.parking/docs/README.md, Tests)."""

collect_ignore_glob = ["exts/*/simgate/parking/tests/*"]
