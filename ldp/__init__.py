"""RFC 5036 LDP: codec and sans-I/O speaker (no sockets, no clocks)."""
