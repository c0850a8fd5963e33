"""Stripe's invoice.paid events, received through a webhook connection (see the README's
"Webhooks in" section)."""

from pydantic import BaseModel

from tidings import Message, handler


class Invoice(BaseModel):
    id: str
    amount_paid: int
    currency: str


class InvoiceData(BaseModel):
    object: Invoice


class InvoicePaid(BaseModel):
    """The parts of Stripe's event this handler reads; the rest is in the event too."""

    id: str
    data: InvoiceData


@handler("invoice.paid", platform="stripe", label="payments")
def record_payment(event: Message[InvoicePaid]) -> dict[str, object]:
    invoice = event.payload.data.object
    return {"invoice": invoice.id, "amount": invoice.amount_paid, "currency": invoice.currency}
