"""SMS through an HTTP gateway.

The contract (a fake gateway in the tests implements it; a real provider gets a small shim):

    POST <SERVICEPULS_FEEDBACK_SMS_GATEWAY_URL>
    Authorization: Bearer <SERVICEPULS_FEEDBACK_SMS_GATEWAY_TOKEN>
    Content-Type: application/json
    {"reference": "<survey id>", "to": "+31612345678", "text": "..."}

    2xx  accepted (the gateway delivers; `reference` makes a repeated POST a no-op there)
    4xx  (other than 408/429) refused for good: reported as delivery_failed
    408, 429, 5xx, timeout, connection error: retried with backoff
"""

from __future__ import annotations

import httpx

from services.feedback.adapters.delivery import PermanentFailure, TemporaryFailure


def international(phone: str) -> str:
    """Dutch numbers in E.164 (+31...), as gateways expect."""
    digits = "".join(c for c in phone if c.isdigit() or c == "+")
    if digits.startswith("+"):
        return digits
    if digits.startswith("0031"):
        return "+" + digits[2:]
    if digits.startswith("0"):
        return "+31" + digits[1:]
    return digits


class SmsGateway:
    def __init__(self, url: str | None, token: str | None, timeout: float = 10) -> None:
        self.url = url
        self.token = token
        self.client = httpx.AsyncClient(timeout=timeout)

    async def send(self, reference: str, phone: str, text: str) -> None:
        if not self.url:
            raise PermanentFailure("sms_not_configured")
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = await self.client.post(
                self.url,
                json={"reference": reference, "to": international(phone), "text": text},
                headers=headers,
            )
        except httpx.HTTPError as exc:
            raise TemporaryFailure("sms_gateway_unreachable") from exc
        if response.is_success:
            return
        code = response.status_code
        if code in (408, 429) or code >= 500:
            raise TemporaryFailure(f"sms_gateway_{code}")
        raise PermanentFailure(f"sms_gateway_{code}")

    async def close(self) -> None:
        await self.client.aclose()
