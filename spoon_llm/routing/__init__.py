"""Routing: deployments, load balancing, circuit breaking and the retry/fallback attempt loop."""

from .balancer import Balancer, Strategy
from .circuit import CircuitBreaker, CircuitState
from .policy import Action, ErrorPolicy

__all__ = ["Action", "Balancer", "CircuitBreaker", "CircuitState", "ErrorPolicy", "Strategy"]
