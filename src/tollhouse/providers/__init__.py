"""Provider adapters: one small interface, one module per kind of upstream."""
