"""Grounded chat about a case: context building, the three-tier answer cascade, and its safety overlays."""

from medsight.chat.cascade import ChatAnswer, chat
from medsight.chat.context import CaseView, build_prompt
from medsight.chat.safety import DISCLAIMER, is_dosing_request
from medsight.chat.tiers import ExtractiveTier, GeminiTier, LocalTier, TierUnavailable

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
