"""Pure value types, the topology model and loader, and the IGP (SPF + ECMP)."""
