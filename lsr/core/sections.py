"""Optional top-level sections of topology files (`expect`, `ipsec`, ...).

Each feature registers its validator with `lsr.core.topology.register_section`
in its own module; this module imports those modules so the loader knows them.
"""

from __future__ import annotations

import importlib

# Modules that call register_section() when imported. Add one line per feature.
SECTION_MODULES: list[str] = [
    "forwarding.ipsec.config",
    "lsr.oam.validate",
]


def load_sections() -> None:
    for name in SECTION_MODULES:
        importlib.import_module(name)
