"""The one path every email takes: outbox, policies, ESP hand-off, links and tracking.

outbox.py    enqueue() -> Message rows (unique idempotency key)
deliver.py   claim queued rows, personalise, hand to the ESP, record the outcome
esp.py       the ESP providers and the per-workspace connection factory
secrets.py   encryption of ESP credentials
links.py     unsubscribe / preference / tracking links and List-Unsubscribe headers
policies.py  suppression, frequency caps, quiet hours, sunset
webhooks.py  ESP tracking webhooks (via Anymail) -> MessageEvent, suppression
"""
