"""The conversation store port: turns of conversations the gateway holds for its clients."""
