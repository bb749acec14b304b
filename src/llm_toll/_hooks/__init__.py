"""Provider SDK hooks: openai, anthropic and google-genai, patched with wrapt where every
request of each passes (as OpenTelemetry's own GenAI instrumentations patch); LiteLLM's
Responses handler, which sends with LiteLLM's own HTTP client; and LiteLLM's error
mapping, which every call of LiteLLM's passes, so that a refusal comes out unwrapped.

Hooks are installed once, when a function is decorated or a run starts (or explicitly, by
``llm_toll.instrument()``), and only into SDKs that are imported: an SDK imported later is
patched when it is imported (wrapt's post-import hooks). ``LLM_TOLL_HOOKS=off`` leaves every
SDK untouched. A hooked request made outside any run costs one context-variable read.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from llm_toll._warnings import warn_once
from llm_toll.exceptions import TelemetryWarning

HOOKS_ENV = "LLM_TOLL_HOOKS"
_OFF = frozenset({"0", "false", "no", "off"})

# The priced endpoints of each Stainless SDK (paths end with them; Azure's have a prefix),
# and where each request body holds its output-token cap (the first is set when it has
# none; chat's legacy ``max_tokens`` is lowered only where the caller used it).
_OPENAI_ENDPOINTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "/chat/completions": (("max_completion_tokens",), ("max_tokens",)),
    "/completions": (("max_tokens",),),
    "/embeddings": (),
    "/responses": (("max_output_tokens",),),
}
_ANTHROPIC_ENDPOINTS: dict[str, tuple[tuple[str, ...], ...]] = {"/v1/messages": (("max_tokens",),)}


def _openai_targets() -> list[tuple[str, str, Callable[..., Any]]]:
    from llm_toll._hooks._stainless import request_hooks

    sync, async_ = request_hooks("openai", _OPENAI_ENDPOINTS)
    return [
        ("openai._base_client", "SyncAPIClient.request", sync),
        ("openai._base_client", "AsyncAPIClient.request", async_),
    ]


def _anthropic_targets() -> list[tuple[str, str, Callable[..., Any]]]:
    from llm_toll._hooks._stainless import request_hooks

    sync, async_ = request_hooks("anthropic", _ANTHROPIC_ENDPOINTS)
    return [
        ("anthropic._base_client", "SyncAPIClient.request", sync),
        ("anthropic._base_client", "AsyncAPIClient.request", async_),
    ]


def _google_genai_targets() -> list[tuple[str, str, Callable[..., Any]]]:
    from llm_toll._hooks import _google_genai as genai

    module = "google.genai._api_client"
    return [
        (module, "BaseApiClient.request", genai.request),
        (module, "BaseApiClient.request_streamed", genai.request_streamed),
        (module, "BaseApiClient.async_request", genai.async_request),
        (module, "BaseApiClient.async_request_streamed", genai.async_request_streamed),
    ]


def _litellm_targets() -> list[tuple[str, str, Callable[..., Any]]]:
    """Where LiteLLM sends a Responses request with its own HTTP client (its chat,
    text-completion and embedding requests go through the openai SDK, whose hooks gate
    them); where it maps what the SDKs raise into errors of its own, and where its streams
    wrap them again: there the refusals it would wrap are handed back as they are. The
    mapping is a function bound by name in several modules: hooked in each."""
    from llm_toll._hooks import _litellm
    from llm_toll._hooks import _litellm_responses as responses

    importlib.import_module(_litellm.MAPPER_MODULE)
    targets = [(module, _litellm.MAPPER, _litellm.map_exception) for module in _litellm.holders()]
    return [
        *targets,
        (_litellm.STREAM_MODULE, _litellm.STREAM_ERRORS, _litellm.stream_error),
        (responses.MODULE, responses.SYNC, responses.response_api_handler),
        (responses.MODULE, responses.ASYNC, responses.async_response_api_handler),
    ]


# The module whose import means the SDK is there -> what to patch in it.
_SDKS: dict[str, Callable[[], list[tuple[str, str, Callable[..., Any]]]]] = {
    "openai": _openai_targets,
    "anthropic": _anthropic_targets,
    "google.genai": _google_genai_targets,
    "litellm": _litellm_targets,
}

_lock = threading.RLock()
_enabled = False
_registered = False
_patched: dict[tuple[str, str], tuple[Any, Callable[..., Any]]] = {}
"""(module, attribute path) -> the object that owns the patched attribute, and llm_toll's
wrapper function there."""


def hooks_allowed() -> bool:
    """False when ``LLM_TOLL_HOOKS`` turns the hooks off."""
    return os.environ.get(HOOKS_ENV, "").strip().lower() not in _OFF


def ensure_installed() -> bool:
    """Install the hooks unless they are (or ``LLM_TOLL_HOOKS=off``); True when active.
    Cheap once installed: called by every decoration and run."""
    if _enabled:
        return True
    return install()


def install() -> bool:
    """Patch every SDK that is imported now and, through post-import hooks, those imported
    later. Idempotent; False (and nothing patched) when ``LLM_TOLL_HOOKS`` turns it off."""
    global _enabled, _registered
    if not hooks_allowed():
        warn_once(
            "hooks-off",
            f"llm_toll: {HOOKS_ENV} turns the provider SDK hooks off: requests are not "
            "gated or recorded where they are made; decorated functions record their "
            "return values.",
            TelemetryWarning,
        )
        return False
    import wrapt  # with the hooks: not part of ``import llm_toll``

    with _lock:
        _enabled = True
        if not _registered:
            for module in _SDKS:
                wrapt.register_post_import_hook(_on_import, module)
            _registered = True
        else:  # hooks registered earlier fire for imports to come; patch what is here now
            for module in _SDKS:
                if module in sys.modules:
                    _patch(module)
    return True


def uninstall() -> None:
    """Take every patch off; SDKs imported from now on are left alone too."""
    global _enabled
    with _lock:
        _enabled = False
        for (module, path), (owner, wrapper) in list(_patched.items()):
            name = path.rsplit(".", 1)[-1]
            _unwrap(owner, name, wrapper)
            if isinstance(owner, ModuleType):
                _unwrap_bound_copies(module.split(".")[0], name, wrapper)
            del _patched[(module, path)]


def _unwrap_bound_copies(package: str, name: str, wrapper: Callable[..., Any]) -> None:
    """Take llm_toll's layer out of the modules of ``package`` that bound a hooked function
    by name (``from m import f``) when they were imported, after the hooks went in."""
    for module_name, module in list(sys.modules.items()):
        if isinstance(module, ModuleType) and module_name.split(".")[0] == package:
            _unwrap(module, name, wrapper)


def _unwrap(owner: Any, name: str, wrapper: Callable[..., Any]) -> None:
    """Take llm_toll's layer out of ``owner.name``, wherever it is in a stack of wrapt
    wrappers: another instrumentation (OpenTelemetry's are wrapt too) may have wrapped it
    since, and its wrapper stays, now around what llm_toll's wrapped."""
    above: Any = None
    layer = vars(owner).get(name)
    while layer is not None and hasattr(layer, "__wrapped__"):
        if getattr(layer, "_self_wrapper", None) is wrapper:
            if above is None:
                setattr(owner, name, layer.__wrapped__)
            else:
                above.__wrapped__ = layer.__wrapped__
            return
        above, layer = layer, layer.__wrapped__


def _on_import(module: Any) -> None:
    with _lock:
        if _enabled:
            _patch(module.__name__)


def _patch(sdk: str) -> None:
    """Patch one SDK (the caller holds the lock); a failure is a warning, never an error."""
    import wrapt

    try:
        targets = _SDKS[sdk]()
        for module_name, path, wrapper in targets:
            if (module_name, path) in _patched:
                continue
            module = importlib.import_module(module_name)
            owner: Any = module  # a function of the module, or a method of a class in it
            for part in path.split(".")[:-1]:
                owner = getattr(owner, part)
            wrapt.wrap_function_wrapper(module, path, wrapper)
            _patched[(module_name, path)] = (owner, wrapper)
    except Exception as exc:  # an SDK version whose internals moved: say so, go on
        warn_once(
            f"hooks:{sdk}",
            f"llm_toll could not hook {sdk} ({type(exc).__name__}: {exc}); its requests are "
            "not gated or recorded where they are made.",
            TelemetryWarning,
        )


def installed() -> list[str]:
    """The patched methods, ``module:Class.method``, for diagnostics and tests."""
    with _lock:
        return sorted(f"{module}:{path}" for module, path in _patched)
