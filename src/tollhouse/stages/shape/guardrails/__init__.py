"""Input guardrails: checks on a call's text before any model sees it and before its
budget is reserved (a request policy of the shaping step, stages/shape/input_guardrails.py).

- `base.Guardrail`: the interface of one check, `Finding` what it found.
- `runner.guard_input`: the route's guardrails, in order, on one call; `check_guardrail`,
  one guardrail on it (a guardrail that raises reports `error`, never `pass`).
- one module per kind: `patterns` (regular expressions, deny-lists), `max_length`,
  `moderation` (a provider's `/moderations` endpoint), `language` (an offline detector).
- `build.build_guardrails`: the guardrails a config names, built once per snapshot.
- `request_text`: the request's strings in every client format, edited copy-on-write.
- `untrusted`, `injection_patterns`: untrusted content wrapped in delimited blocks, and the
  prompt-injection patterns flagged inside it (stages/shape/untrusted_content.py).
"""
