"""The built-in simulator: a fake LLM provider that speaks both wire formats, realistic,
deterministic and fast. It is the default upstream when no provider key is configured and the
upstream of every test. Start at `engine.Simulator`; `asgi` serves it over HTTP and
`tollhouse.providers.simulator` plugs it into the gateway in process."""
