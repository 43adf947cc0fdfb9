"""What every answer tier shares: `stream(prompt) -> iterator of text`, and `TierUnavailable`, raised before the
first chunk when a tier cannot answer now so that the cascade asks the next one."""

from __future__ import annotations


class TierUnavailable(Exception):
    """This tier cannot answer now (no key, no model, network error, timeout, unsupported text); try the next one."""
