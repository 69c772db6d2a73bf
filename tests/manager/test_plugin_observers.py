"""Plugins subscribe observers to every manager through the spoon_llm_register_observers hook."""

import sys
import textwrap

import pytest

from spoon_llm.registry import PluginLoadWarning

OBSERVER_PLUGIN = """
    from spoon_llm import hookimpl

    SEEN = []

    class Recorder:
        event_kinds = {"request_end"}

        def on_event(self, event):
            SEEN.append((event.kind, event.success))

    @hookimpl
    def spoon_llm_register_observers(register):
        register(Recorder())
"""


def _install(tmp_path, monkeypatch, name, module, source):
    dist = tmp_path / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[spoon_llm]\n{name} = {module}\n")
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)


async def test_a_plugin_observer_sees_every_managers_requests(sim, make_manager, tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch, "observer-plugin", "observer_plugin_mod", OBSERVER_PLUGIN)
    manager = make_manager({"primary": {"model": "m"}})
    await manager.chat("hi")
    import observer_plugin_mod

    assert observer_plugin_mod.SEEN == [("request_end", True)]
    assert "request_start" not in manager.events.kinds  # only what the plugin asked for is built
    await manager.cleanup()


async def test_a_broken_observer_plugin_warns_and_the_manager_works(sim, make_manager, tmp_path, monkeypatch):
    source = """
        from spoon_llm import hookimpl

        @hookimpl
        def spoon_llm_register_observers(register):
            raise RuntimeError("observer plugin bug")
    """
    _install(tmp_path, monkeypatch, "bad-observers", "bad_observers_mod", source)
    with pytest.warns(PluginLoadWarning, match="bad-observers.*observer plugin bug"):
        manager = make_manager({"primary": {"model": "m"}})
    assert (await manager.chat("hi")).content
    await manager.cleanup()
