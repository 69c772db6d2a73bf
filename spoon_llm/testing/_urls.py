"""The base URL each vendor's client wants for a simulator at ``base_url``.

Shared by :class:`~spoon_llm.testing.ProviderSimulator` and the benchmark harness's ``Target``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["VendorURLs"]


class VendorURLs:
    """Mixin: per-vendor base URLs derived from ``base_url`` (``http://127.0.0.1:PORT``)."""

    if TYPE_CHECKING:

        @property
        def base_url(self) -> str:
            """``http://127.0.0.1:PORT``: a field or a property of the class using the mixin."""

    @property
    def openai_base_url(self) -> str:
        """Base URL for the OpenAI SDK (and vLLM clients): ``base_url + "/v1"``."""
        return self.base_url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        """Base URL for the Anthropic SDK, which appends ``/v1/messages`` itself."""
        return self.base_url

    @property
    def gemini_base_url(self) -> str:
        """Base URL for google-genai's ``HttpOptions(base_url=...)``; it appends ``/v1beta/models/...``."""
        return self.base_url

    @property
    def vertex_base_url(self) -> str:
        """Base URL for Vertex AI clients (ours, or google-genai with ``vertexai=True``): ``/v1beta1/projects/...``."""
        return self.base_url

    @property
    def openrouter_base_url(self) -> str:
        """Base URL for an OpenAI client talking to OpenRouter: ``base_url + "/api/v1"``."""
        return self.base_url + "/api/v1"

    @property
    def deepseek_base_url(self) -> str:
        """Base URL for an OpenAI client talking to DeepSeek (its paths have no ``/v1``)."""
        return self.base_url

    @property
    def azure_endpoint(self) -> str:
        """The Azure OpenAI endpoint (as ``AZURE_OPENAI_ENDPOINT``): ``/openai/deployments/...`` and ``/openai/v1``."""
        return self.base_url

    def compatible_base_url(self, vendor: str) -> str:
        """Base URL for an OpenAI-compatible preset (``mistral``, ``groq``, ``xai``, ``cerebras``, ``together``...)."""
        from ._compat import VENDOR_ROOTS

        if vendor not in VENDOR_ROOTS:
            raise ValueError(f"the simulator serves no OpenAI-compatible vendor {vendor!r}; "
                             f"one of {sorted(VENDOR_ROOTS)}")
        return f"{self.base_url}/{vendor}{VENDOR_ROOTS[vendor]}"
