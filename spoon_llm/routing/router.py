"""Router: turns ``provider=`` / ``model=`` of a call into the ordered deployments to try, then the fallbacks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..config.manager import ConfigurationManager
from ..config.models import ProviderConfig
from ..errors import ConfigurationError
from ..interface import ProviderCapability
from ..registry import LLMProviderRegistry
from .balancer import Balancer
from .capabilities import declared_capabilities
from .circuit import CircuitBreaker
from .deployment import DeploymentState
from .models import ModelChecker
from .timeouts import RouteTimeouts

__all__ = ["RoutePlan", "Router"]


@dataclass
class RoutePlan:
    """What one route means: deployments (each with the model to ask for), then what to fall back to."""

    name: str
    targets: list[tuple[DeploymentState, str | None]]
    fallback: list[str] = field(default_factory=list)
    context_fallback: str | None = None
    #: The caller named this provider (or alias) explicitly.
    explicit: bool = False
    #: The route's own timeout caps (``[models.NAME]``), ``None`` when it sets none.
    timeouts: RouteTimeouts | None = None
    #: The route's own load-balancing strategy (``[models.NAME] strategy``), over the manager's.
    strategy: str | None = None
    #: Several keys of one provider sit side by side in ``targets`` for the same model: they take turns (see
    #: :meth:`Router.ordered`).
    rotate: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        targets = self.targets
        self.rotate = any(_same_turn(targets[i - 1], targets[i]) for i in range(1, len(targets)))


def _same_turn(a: tuple[DeploymentState, str | None], b: tuple[DeploymentState, str | None]) -> bool:
    # Two keys (deployments) of one provider asked for the same model: interchangeable, so they share traffic.
    # One deployment asked for two models is a primary and its failover: their order stays.
    return a[0].provider_name == b[0].provider_name and a[1] == b[1] and a[0] is not b[0]


class Router:
    """Knows every deployment and resolves routes; owns no I/O."""

    def __init__(
        self,
        config: ConfigurationManager,
        registry: LLMProviderRegistry,
        circuit_factory: Callable[[str], CircuitBreaker],
    ) -> None:
        self.config = config
        self.registry = registry
        self._circuit_factory = circuit_factory
        self.deployments: dict[str, DeploymentState] = {}
        self._by_provider: dict[str, list[DeploymentState]] = {}
        self.default_override: str | None = None
        self.fallback_override: list[str] | None = None
        self.balancer: Balancer | None = None
        self._route_balancers: dict[str, Balancer] = {}
        self._plan_cache: dict[tuple[str | None, str | None, str | None], RoutePlan] = {}
        self._turns: dict[tuple[str, int], int] = {}  # round robin over one provider's keys, per route
        self.models = ModelChecker(config.config, registry)  # strict resolution of plain model names
        for name in config.list_configured_providers():
            self._add_section(config.config.providers[name])

    # -- deployments ----------------------------------------------------------------------------------------

    def _add_section(self, section: ProviderConfig) -> list[DeploymentState]:
        states = []
        declared: dict[str, frozenset[ProviderCapability] | None] = {}
        for deployment in section.deployments():
            state = DeploymentState(deployment, section.for_deployment(deployment),
                                    self._circuit_factory(deployment.name))
            kind = deployment.provider_type
            if kind not in declared:
                declared[kind] = declared_capabilities(self.registry, kind)
            state.capabilities = declared[kind]
            self.deployments[deployment.name] = state
            states.append(state)
        self._by_provider[section.name] = states
        self._plan_cache = {}  # plans name deployments: a new section may change what a route means
        return states

    def provider_deployments(self, provider: str) -> list[DeploymentState]:
        """Deployments of a provider section; a registered provider with no section gets one with its defaults."""
        states = self._by_provider.get(provider)
        if states is None:
            section = self.config.provider_section(provider)  # raises with a did-you-mean when unknown
            if not section.enabled:
                raise ConfigurationError(f"provider {provider!r} is disabled in the configuration",
                                         key=f"providers.{provider}.enabled")
            states = self._add_section(section)
        return states

    def providers(self) -> list[str]:
        """Provider sections with deployments, in configuration order."""
        return list(self._by_provider)

    # -- routes ---------------------------------------------------------------------------------------------

    def default_route(self) -> str:
        """The route used when a call names neither provider nor model."""
        return self.default_override or self.config.get_default_provider()

    def fallback_chain(self) -> list[str]:
        """The global fallback chain (run-time override first)."""
        if self.fallback_override is not None:
            return list(self.fallback_override)
        return self.config.get_fallback_chain()

    def resolve(self, provider: str | None, model: str | None) -> RoutePlan:
        """The plan for a call's ``provider`` / ``model`` arguments (plans are immutable and cached).

        ``model`` may be an alias (``sonnet``), ``provider/model`` (``anthropic/claude-sonnet-4-5``), or a plain
        model name for the default (or named) provider.
        """
        key = (provider, model, self.default_override)
        plan = self._plan_cache.get(key)
        if plan is None:
            plan = self._resolve(provider, model)
            if len(self._plan_cache) < 4096:  # bounded: callers may pass arbitrary model names
                self._plan_cache[key] = plan
        return plan

    def _resolve(self, provider: str | None, model: str | None) -> RoutePlan:
        aliases = self.config.config.models
        if provider is not None:
            if provider in aliases and provider not in self._by_provider:
                return self._alias_plan(provider, explicit=True)
            # provider= with model= is as explicit as model="provider/model": sent as written.
            return RoutePlan(name=provider, targets=[(d, model) for d in self.provider_deployments(provider)],
                             explicit=True)
        if model is not None:
            if model in aliases:
                return self._alias_plan(model, explicit=True)
            prefix, _, rest = model.partition("/")
            if rest and prefix in self._by_provider:
                return RoutePlan(name=prefix, targets=[(d, rest) for d in self._by_provider[prefix]], explicit=True)
            plan = self.resolve(None, None)
            self.models.check(model, [d for d, _ in plan.targets], plan.name)
            return RoutePlan(name=plan.name, targets=[(d, model) for d, _ in plan.targets], fallback=plan.fallback,
                             context_fallback=plan.context_fallback, explicit=True, timeouts=plan.timeouts)
        default = self.default_route()
        if default in aliases:
            return self._alias_plan(default, explicit=False)
        return RoutePlan(name=default, targets=[(d, None) for d in self.provider_deployments(default)])

    def _alias_plan(self, alias: str, *, explicit: bool) -> RoutePlan:
        route = self.config.config.models[alias]
        targets = [(d, t.model) for t in route.targets for d in self.provider_deployments(t.provider)]
        return RoutePlan(name=alias, targets=targets, fallback=list(route.fallback),
                         context_fallback=route.context_fallback, explicit=explicit,
                         timeouts=RouteTimeouts.of(route), strategy=route.strategy)

    def fallback_plans(self, plan: RoutePlan, fallback: bool | Sequence[str] | None) -> list[RoutePlan]:
        """Plans to try after ``plan``: the caller's list, else the route's own, else the global chain.

        ``fallback=False`` disables fallback; ``None`` (the default) and ``True`` both use the configured chain,
        also when the caller named a provider.
        """
        if fallback is False:
            return []
        if isinstance(fallback, str):  # one name
            names = [fallback]
        elif isinstance(fallback, (list, tuple)):
            names = list(fallback)
        else:  # None or True (the request core refuses any other kind up front)
            names = plan.fallback or self.fallback_chain()
        seen = {d.name for d, _ in plan.targets}
        plans = []
        for name in names:
            if name == plan.name:
                continue
            resolved = self.resolve(None, name) if name in self.config.config.models else self.resolve(name, None)
            targets = [(d, m) for d, m in resolved.targets if d.name not in seen]
            seen.update(d.name for d, _ in targets)
            if targets:
                plans.append(RoutePlan(resolved.name, targets, resolved.fallback, resolved.context_fallback,
                                       resolved.explicit, resolved.timeouts))
        return plans

    def _route_balancer(self, strategy: str) -> Balancer:
        """One balancer per strategy a route names (each keeps its state per route name)."""
        balancer = self._route_balancers.get(strategy)
        if balancer is None:
            balancer = self._route_balancers[strategy] = Balancer(strategy)  # type: ignore[arg-type]
        return balancer

    def ordered(self, plan: RoutePlan) -> Sequence[tuple[DeploymentState, str | None]]:
        """The plan's deployments in try-order.

        Balanced when load balancing is on; otherwise as configured, except that several keys of one provider
        take turns (round robin, the rest of them as failover order), so every key shares the traffic without
        ``load_balancing`` being set.
        """
        targets = plan.targets
        if len(targets) <= 1:
            return targets  # the plan's own list, read-only: no copy on the request path
        balancer = self.balancer if plan.strategy is None else self._route_balancer(plan.strategy)
        if balancer is not None:
            models = {d.name: m for d, m in targets}
            return [(d, models[d.name])
                    for d in balancer.order(plan.name, [d for d, _ in targets if d.available])]
        if not plan.rotate:
            return targets
        out: list[tuple[DeploymentState, str | None]] = []
        start = 0
        while start < len(targets):
            end = start + 1
            while end < len(targets) and _same_turn(targets[end - 1], targets[end]):
                end += 1
            group = targets[start:end]
            if len(group) > 1:
                turn_key = (plan.name, start)
                turn = self._turns.get(turn_key, 0)
                self._turns[turn_key] = turn + 1
                turn %= len(group)
                group = [*group[turn:], *group[:turn]]
            out.extend(group)
            start = end
        return out
