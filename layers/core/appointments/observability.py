"""The Powertools logger, tracer and metrics: the only instances, shared by every function.

The service name comes from ``POWERTOOLS_SERVICE_NAME`` set per function in the template.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
