"""Token counting without a tokenizer download."""
