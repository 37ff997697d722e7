"""A BGP-4 speaker (RFC 4271), sans-I/O, with MP-BGP for VPN-IPv4 (RFC 4760, RFC 4364)."""
