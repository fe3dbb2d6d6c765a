"""State behind small interfaces (DESIGN.md, "State behind ports"): one folder per port."""
