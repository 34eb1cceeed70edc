"""Formatting steps: conversations, SFT and DPO datasets from generation outputs."""

from distil_dagster.steps.formatting.conversation import ConversationTemplate
from distil_dagster.steps.formatting.dpo import FormatChatGenerationDPO, FormatTextGenerationDPO
from distil_dagster.steps.formatting.sft import FormatChatGenerationSFT, FormatTextGenerationSFT

__all__ = [
    "ConversationTemplate",
    "FormatChatGenerationDPO",
    "FormatChatGenerationSFT",
    "FormatTextGenerationDPO",
    "FormatTextGenerationSFT",
]
