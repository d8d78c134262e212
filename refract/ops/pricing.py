"""Estimated cost in US dollars, from tokens and the price table in settings.

Gemini bills per million tokens, input and output separately, per model; an image the
image model returns is billed as output tokens. A model missing from the table (the
local backend) costs nothing here, and the dashboard says the estimate covers the models
it knows.
"""

from __future__ import annotations

from dataclasses import dataclass

MILLION = 1_000_000


@dataclass(frozen=True)
class PriceTable:
    """Dollars per million tokens by model and direction (``input``, ``output``)."""

    per_mtok: dict[str, dict[str, float]]

    def knows(self, model: str | None) -> bool:
        """Whether ``model`` has a price."""
        return model is not None and model in self.per_mtok

    def cost(self, model: str | None, input_tokens: int | None, output_tokens: int | None) -> float:
        """The estimated cost of one call's (or one feature's) tokens; 0.0 if unpriced."""
        if model is None or model not in self.per_mtok:
            return 0.0
        price = self.per_mtok[model]
        return (
            (input_tokens or 0) * price.get("input", 0.0)
            + (output_tokens or 0) * price.get("output", 0.0)
        ) / MILLION
