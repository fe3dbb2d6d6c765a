"""The response cache port: stored answers by key, fresh for a TTL, kept a while longer stale."""
