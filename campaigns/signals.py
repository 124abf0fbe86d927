"""Signals of the sending pipeline, for the rooms that react to it (outgoing webhooks here,
journeys and analytics above). Send them on commit.

    message_event_recorded   kwargs: workspace (Workspace), message (Message),
                             kind (MessageEventKind value), event (the MessageEvent saved)

Sent by campaigns.sending.webhooks (ESP events: bounced, complained, delivered...) and the
tracking views (opened, clicked, unsubscribed) once per new MessageEvent; a duplicate that
was dropped is not announced.
"""

from django.dispatch import Signal

message_event_recorded = Signal()
