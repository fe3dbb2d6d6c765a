"""The two wire formats: decoding, validation, SSE framing and translation between them."""
