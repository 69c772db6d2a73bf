import sys
import textwrap
import warnings

import pytest
from spoon_llm_echo import EchoProvider

from spoon_llm import (
    ConfigurationError,
    LLMProviderRegistry,
    ProviderCapability,
    get_global_registry,
    register_provider,
)
from spoon_llm.registry import PluginLoadWarning


class OtherEcho(EchoProvider):
    pass


class HalfOpened(EchoProvider):
    """A provider whose initialisation fails after it opened something."""

    closed = 0

    async def initialize(self, config):
        self.opened = True
        raise ConfigurationError("no model configured")

    async def cleanup(self):
        HalfOpened.closed += 1


def test_register_lookup_and_unregister():
    registry = LLMProviderRegistry(load_plugins=False)
    registry.register("mine", EchoProvider, ["chat", "streaming"])
    assert registry.is_registered("mine")
    assert registry.get_provider_class("mine") is EchoProvider
    assert registry.get_capabilities("mine") == [ProviderCapability.CHAT, ProviderCapability.STREAMING]
    assert "mine" in registry.list_providers()
    registry.unregister("mine")
    assert not registry.is_registered("mine")


def test_taken_name_needs_explicit_replace():
    registry = LLMProviderRegistry(load_plugins=False)
    registry.register("mine", EchoProvider)
    with pytest.raises(ConfigurationError, match="already registered.*replace=True"):
        registry.register("mine", OtherEcho)
    registry.register("mine", OtherEcho, replace=True)
    assert registry.get_provider_class("mine") is OtherEcho


def test_unknown_name_suggests_the_closest():
    registry = LLMProviderRegistry(load_plugins=False)
    with pytest.raises(ConfigurationError, match="did you mean 'openai'"):
        registry.get_provider_class("opneai")


def test_unknown_capability_is_rejected():
    with pytest.raises(ValueError, match="unknown capability 'telepathy'"):
        LLMProviderRegistry(load_plugins=False).register("x", EchoProvider, ["telepathy"])


def test_builtins_are_lazy_specs():
    registry = LLMProviderRegistry(load_plugins=False)
    entry = {e.name: e for e in registry.entries()}["openai"]
    assert entry.spec == "spoon_llm.providers.openai:OpenAIProvider"
    assert entry.source == "builtin"
    assert ProviderCapability.TOOLS in registry.get_capabilities("openai")


def test_decorator_registers_in_the_global_registry():
    @register_provider("decorated", capabilities=[ProviderCapability.CHAT])
    class Decorated(EchoProvider):
        pass

    registry = get_global_registry()
    assert registry.get_provider_class("decorated") is Decorated
    assert Decorated.provider_name == "decorated"
    assert Decorated.capabilities == (ProviderCapability.CHAT,)


def test_installed_plugin_is_discovered_through_its_entry_point():
    registry = LLMProviderRegistry()
    entry = {e.name: e for e in registry.entries()}["echo"]
    assert entry.source == "plugin echo"
    assert entry.spec == "spoon_llm_echo:EchoProvider"
    assert registry.get_provider_class("echo").__name__ == "EchoProvider"


async def test_plugin_provider_works_end_to_end():
    registry = LLMProviderRegistry()
    provider = await registry.get_initialized_provider("echo", {"model": "echo-2"})
    response = await provider.chat([{"role": "user", "content": "hello there"}])
    assert response.content == "echo: hello there"
    assert response.model == "echo-2"


async def test_a_provider_whose_initialisation_fails_is_closed():
    registry = LLMProviderRegistry(load_plugins=False)
    registry.register("half", HalfOpened, ["chat"])
    with pytest.raises(ConfigurationError, match="no model configured"):
        await registry.get_initialized_provider("half", {})
    assert HalfOpened.closed == 1


async def test_each_call_builds_a_provider_the_caller_owns():
    registry = LLMProviderRegistry()
    first = await registry.get_initialized_provider("echo", {"model": "a"})
    again = await registry.get_initialized_provider("echo", {"model": "a"})
    second = await registry.get_initialized_provider("echo", {"model": "b"})
    try:
        assert again is not first and second is not first  # nothing cached: the registry holds no instance
        assert (await first.chat("x")).model == "a" and (await second.chat("x")).model == "b"
        assert registry.get_provider("echo") is not registry.get_provider("echo")
    finally:
        for provider in (first, again, second):
            await provider.cleanup()


def _install_fake_distribution(tmp_path, name, module_source, entry_point_value, monkeypatch):
    """A real distribution on sys.path: dist-info metadata + entry_points.txt + module."""
    dist = tmp_path / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[spoon_llm]\n{name} = {entry_point_value}\n")
    module = entry_point_value.split(":")[0]
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(module_source))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)


def test_broken_plugin_warns_with_its_distribution_and_breaks_nothing(tmp_path, monkeypatch):
    _install_fake_distribution(tmp_path, "broken-plugin", "import does_not_exist_anywhere\n",
                               "broken_plugin_mod", monkeypatch)
    registry = LLMProviderRegistry()
    with pytest.warns(PluginLoadWarning, match="broken-plugin.*failed to load.*does_not_exist_anywhere"):
        names = registry.list_providers()
    assert {"echo", "openai", "anthropic"} <= set(names)
    assert any("broken-plugin" in e for e in registry.plugin_errors)


def test_plugin_that_raises_while_registering_is_isolated(tmp_path, monkeypatch):
    source = """
        from spoon_llm import hookimpl

        @hookimpl
        def spoon_llm_register_providers(register):
            raise RuntimeError("boom")
    """
    _install_fake_distribution(tmp_path, "exploding", source, "exploding_mod", monkeypatch)
    registry = LLMProviderRegistry()
    with pytest.warns(PluginLoadWarning, match="exploding.*boom"):
        assert "echo" in registry.list_providers()


def test_misspelt_hook_is_loud(tmp_path, monkeypatch):
    source = """
        from spoon_llm import hookimpl

        @hookimpl
        def spoon_llm_register_provider(register):  # missing the final s
            register("never", "nowhere:Nothing")
    """
    _install_fake_distribution(tmp_path, "typo-plugin", source, "typo_mod", monkeypatch)
    registry = LLMProviderRegistry()
    with pytest.warns(PluginLoadWarning, match="unknown hook"):
        names = registry.list_providers()
    assert "never" not in names and "echo" in names


def test_plugin_name_clash_warns_and_keeps_the_first(tmp_path, monkeypatch):
    source = """
        from spoon_llm import hookimpl

        @hookimpl
        def spoon_llm_register_providers(register):
            register("openai", "clash_mod:Nothing")
    """
    _install_fake_distribution(tmp_path, "clash", source, "clash_mod", monkeypatch)
    registry = LLMProviderRegistry()
    with pytest.warns(PluginLoadWarning, match="cannot register provider 'openai'"):
        entries = {e.name: e for e in registry.entries()}
    assert entries["openai"].source == "builtin"


def test_allow_list_and_block_list():
    assert "echo" not in LLMProviderRegistry(env={"SPOON_LLM_PLUGINS": "none"}).list_providers()
    assert "echo" in LLMProviderRegistry(env={"SPOON_LLM_PLUGINS": "echo"}).list_providers()
    assert "echo" not in LLMProviderRegistry(env={"SPOON_LLM_BLOCK_PLUGINS": "echo"}).list_providers()


def test_lazy_spec_that_does_not_import_is_a_clear_error():
    registry = LLMProviderRegistry(load_plugins=False)
    registry.register("ghost", "no_such_module_here:Ghost")
    with warnings.catch_warnings():
        with pytest.raises(ConfigurationError, match="cannot be loaded from 'no_such_module_here:Ghost'"):
            registry.get_provider_class("ghost")
