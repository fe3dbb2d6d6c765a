"""The stages of one call, in order: see DESIGN.md, "The path of one call"."""
