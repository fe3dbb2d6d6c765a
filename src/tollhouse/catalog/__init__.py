"""The shipped model catalog: data, not code."""
