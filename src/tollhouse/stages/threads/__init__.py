"""Conversations the gateway holds for its clients, expanded before routing and kept after
the answer: Anthropic message threads (`anthropic_threads.py`), over the conversation store
(`held_conversations.py`, ports/conversations)."""
