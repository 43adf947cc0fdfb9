"""Grounded chat about a case: context building, the answer cascade (Gemini, an optional local generator, the
extractive default), the grounding check, and the safety overlays."""

from medsight.chat.base import TierUnavailable
from medsight.chat.cascade import ChatAnswer, chat
from medsight.chat.context import CaseView, build_prompt
from medsight.chat.extractive import ExtractiveTier
from medsight.chat.gemini import GeminiTier
from medsight.chat.local import LocalTier
from medsight.chat.safety import DISCLAIMER, is_dosing_request

__all__ = [
    "CaseView",
    "ChatAnswer",
    "DISCLAIMER",
    "ExtractiveTier",
    "GeminiTier",
    "LocalTier",
    "TierUnavailable",
    "build_prompt",
    "chat",
    "is_dosing_request",
]
