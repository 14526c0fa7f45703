"""Grid-intensity sources behind one protocol, and the fallback chain that fronts them.

Front-ends call ``build_chain(settings.provider, settings)`` and then ``chain.forecast(now,
horizon)`` / ``chain.current(now)`` / ``chain.history(start, end)``; every answer carries
``source``, ``fallback``, ``signal`` and ``static``.
"""

from greenai.providers.base import CurrentIntensity, IntensitySource, Provider
from greenai.providers.fallback import FallbackChain, build_chain
from greenai.providers.http import build_http_client
from greenai.providers.registry import PROVIDERS, parse_chain

__all__ = [
    "PROVIDERS",
    "CurrentIntensity",
    "FallbackChain",
    "IntensitySource",
    "Provider",
    "build_chain",
    "build_http_client",
    "parse_chain",
]
