"""Example handlers: what a welcome flow looks like with tidings."""

from pydantic import BaseModel

import tidings
from tidings import Message, handler


class UserCreated(BaseModel):
    email: str
    name: str = ""


@handler("user.created", tx_key="send-welcome-email")
def send_welcome_email(event: Message[UserCreated]) -> dict[str, object]:
    """Greets a new user; the email.sent event it emits is handled below."""
    greeting = f"Welcome, {event.payload.name or event.payload.email}!"
    tidings.emit("email.sent", {"to": event.payload.email, "subject": greeting})
    return {"sent": True, "to": event.payload.email, "subject": greeting}


@handler("email.sent", tx_key="count-sent-emails")
def count_sent_emails(event: Message[dict[str, str]]) -> dict[str, str]:
    return {"recorded": event.payload["to"]}
