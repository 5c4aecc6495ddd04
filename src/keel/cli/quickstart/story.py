"""What every chapter of the quickstart shares: how it narrates."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Say"]

Say = Callable[[str, str], None]  # say(title, text): a chapter's heading and what it shows
