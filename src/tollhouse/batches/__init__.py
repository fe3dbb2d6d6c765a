"""Message Batches: Anthropic `/v1/messages/batches` and OpenAI `/v1/batches` with its
`/v1/files`, relayed to the provider with the gateway's own key, half price or so, and
accounted line by line.

- `endpoints.py`: the HTTP endpoints as the SDKs call them, keys and scopes, routing each
  request to the one provider the batch goes to, and the budget reservation at creation;
- `lines.py`: a batch's requests read from the client's body or JSONL file, and checked;
- `relay.py`: one request to the provider;
- `held.py`: the batches and files this process holds, and whose they are;
- `settlement.py`: recording each line once the batch has ended (who records, and when).
"""
