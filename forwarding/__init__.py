"""Userspace MPLS forwarding (RFC 3032/3443/4950): pure decisions on frames, plus I/O edges."""
