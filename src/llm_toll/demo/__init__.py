"""The demo (``python -m llm_toll.demo``) and the loopback replay server it calls."""

from llm_toll.demo.replay import ReplayServer, Script

__all__ = ["ReplayServer", "Script"]
