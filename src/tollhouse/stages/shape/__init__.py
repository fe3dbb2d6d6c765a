"""Request shaping: the ordered list of small request policies every call passes through
after its route is known and before admission (DESIGN.md's `shape` stage).

- `policy.RequestPolicy`: the interface of one policy (`apply(call, plan, key)`: adjust the
  call or refuse it with a `TollhouseError`, or return an awaitable when it must wait).
- `request_policies.request_policies`: the list, built in one place; reading it gives the order.
- one module per policy: `variant_request` (a variant's changes), `parameter_rules`,
  `history_bound` (a token budget for the conversation; `history_summary` writes the
  summaries of what it drops), `input_limits` (bytes, tokens, messages, the `max_tokens` cap).

A new policy (prompt-cache breakpoints, input guardrails) is one module here and one line
in `request_policies`.
"""
