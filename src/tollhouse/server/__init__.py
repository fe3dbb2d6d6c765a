"""The HTTP face of the gateway: a plain ASGI application and the server that runs it."""
