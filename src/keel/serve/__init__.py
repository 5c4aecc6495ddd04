"""The inference server: predictions, outcome feedback, online validation and hot swap.

``keel serve churn`` answers ``POST /predict`` and the Open Inference Protocol
v2 routes with ``churn@champion``, logs every prediction to the log lake,
takes outcomes on ``POST /feedback``, routes a share of traffic to a
challenger (shadow, canary, A/B) while its guardrails hold, and follows alias
and deployment moves without failing a request.
"""

from __future__ import annotations

from keel.serve.app import create_app
from keel.serve.config import ServeConfig
from keel.serve.server import serve

__all__ = ["ServeConfig", "create_app", "serve"]
