"""Request shaping: the ordered list of small request policies every call passes through
after its route is known and before admission (DESIGN.md's `shape` stage).

- `policy.RequestPolicy`: the interface of one policy (`apply(call, plan, key)`: adjust the
  call or refuse it with a `TollhouseError`).
- `request_policies.request_policies`: the list, built in one place; reading it gives the order.
- one module per policy: `input_limits` (bytes, tokens, messages, the `max_tokens` cap).

A new policy (model parameter rules, history bound, prompt-cache breakpoints, input
guardrails) is one module here and one line in `request_policies`.
"""
