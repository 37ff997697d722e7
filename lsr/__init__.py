"""lsr: an MPLS label-switching router emulator.

Import packages: ``lsr`` (core model, IGP, simulator, labs, CLI), ``ldp``
(RFC 5036 speaker) and ``forwarding`` (RFC 3032 userspace dataplane).
"""

__version__ = "0.1.0"
