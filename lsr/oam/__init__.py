"""MPLS OAM: LSP ping / traceroute (RFC 8029) and path validation.

Pure code (no sockets, no clock): `echo` is the wire codec, `responder` the
decision of an LSR receiving an echo request, `trace` the ping/traceroute
engine driven by a caller-supplied `send`, `lspwalk` the one walk of an LSP
over per-router LFIBs (every ECMP branch, hop by hop, with its problems),
`validate` the path-validation engine behind `lsr validate` and the `expect:`
section of topology files, `lspping` the `lsr lsp ping/traceroute` results over
either back end. The edge drivers feed them: `lsr.sim` (the simulator),
`lsr.lab.lsp` (a running lab) and `lsr.lab.node_oam` (the responder and prober
inside a lab router's runtime).
"""
