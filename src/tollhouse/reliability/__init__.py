"""Policies that keep calls answered when upstreams fail: backoff, failure classes,
circuit breakers, load shedding. The dispatch stage applies them."""
