"""Hypothesis strategies for what a decorated function may hand back after a paid call:
response objects of every shape (dicts, SDK objects, look-alikes, objects whose attributes
raise), usage fields of every type, stream items, and ``extract_usage=`` callbacks that
return anything or raise.

Each generated value has a safe ``repr`` (Hypothesis prints failing examples); the values
that misbehave do so on attribute access, truth, comparison, hashing and iteration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from llm_toll.usage import MAX_TOKENS_PER_CALL, ExtractedUsage, Usage


class Trap(Exception):
    """What misbehaving values raise: never an exception of the wrapped function."""


class UnprintableTrap(Trap):
    """A failure whose message cannot be read either."""

    def __str__(self) -> str:
        raise Trap("str")

    def __repr__(self) -> str:
        raise Trap("repr")


class Hostile:
    """A value that raises on everything but identity: attribute access (a lazy SDK field,
    a proxy whose target is gone), truth, comparison, hashing, iteration, length."""

    def __getattr__(self, name: str) -> Any:
        raise Trap(f"attribute {name}")

    def __bool__(self) -> bool:
        raise Trap("bool")

    def __eq__(self, other: object) -> bool:
        raise Trap("eq")

    def __hash__(self) -> int:
        raise Trap("hash")

    def __iter__(self) -> Any:
        raise Trap("iter")

    def __len__(self) -> int:
        raise Trap("len")

    def __repr__(self) -> str:
        return "Hostile()"


class HostileDict(dict[str, Any]):
    """A dict whose reads raise: ``get``, ``[]``, ``in``."""

    def get(self, key: Any, default: Any = None) -> Any:
        raise Trap(f"get {key}")

    def __getitem__(self, key: Any) -> Any:
        raise Trap(f"getitem {key}")

    def __contains__(self, key: object) -> bool:
        raise Trap("contains")

    def __repr__(self) -> str:
        return f"HostileDict({dict(self)!r})"


class Fields:
    """An object of no known SDK carrying ``fields`` as attributes; reading any name in
    ``raising`` raises (a lazy field), any other missing name is simply absent."""

    def __init__(self, fields: dict[str, Any], raising: frozenset[str] = frozenset()) -> None:
        self.__dict__.update(fields)
        self._raising = raising

    def __getattr__(self, name: str) -> Any:
        if name in self.__dict__.get("_raising", ()):
            raise Trap(f"lazy {name}")
        raise AttributeError(name)

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.__dict__.items() if k != "_raising"}
        return f"Fields({shown!r}, raising={sorted(self._raising)!r})"


# -- values -----------------------------------------------------------------------------------

TOO_BIG = st.sampled_from([MAX_TOKENS_PER_CALL + 1, 2**63 - 1, 2**63, 2**64, 10**30, 10**400])
NOT_TEXT: st.SearchStrategy[Any] = st.one_of(
    st.booleans(),
    st.integers(max_value=-1),
    TOO_BIG,
    st.floats(),  # NaN and infinities included
    st.binary(max_size=2),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.builds(Hostile),
)
"""Anything but a token count or a name."""
SOME_GARBAGE = st.one_of(NOT_TEXT, st.text(max_size=4))
"""Anything but a token count, and not None."""
GARBAGE = st.one_of(st.none(), SOME_GARBAGE)
"""Anything but a token count."""
COUNT = st.integers(min_value=0, max_value=5_000)
MAYBE_COUNT = st.one_of(COUNT, COUNT, GARBAGE)
"""A token count as a provider may send it: mostly fine, sometimes anything."""
NAME = st.one_of(st.sampled_from(["gpt-4o", "claude-3-5-haiku-latest", "my-model"]), GARBAGE)
TEXT = st.one_of(st.text(max_size=12), GARBAGE)


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``value``, or the field replaced by garbage."""
    return st.one_of(value, value, GARBAGE)


def _object(
    fields: dict[str, st.SearchStrategy[Any]], **optional: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """A JSON object with ``fields`` and some of ``optional``, or garbage in its place."""
    return _maybe(st.fixed_dictionaries(fields, optional=optional))


def _openai_usage(prefix: str = "prompt", out: str = "completion") -> st.SearchStrategy[Any]:
    return _maybe(
        st.fixed_dictionaries(
            {f"{prefix}_tokens": MAYBE_COUNT, f"{out}_tokens": MAYBE_COUNT},
            optional={
                f"{prefix}_tokens_details": _maybe(
                    st.fixed_dictionaries({}, optional={"cached_tokens": MAYBE_COUNT})
                ),
                f"{out}_tokens_details": _maybe(
                    st.fixed_dictionaries({}, optional={"reasoning_tokens": MAYBE_COUNT})
                ),
            },
        )
    )


_CHOICES = _maybe(st.lists(_object({"message": _object({"content": TEXT})}), max_size=2))
OPENAI_CHAT = st.fixed_dictionaries(
    {"object": st.just("chat.completion"), "usage": _openai_usage()},
    optional={"model": NAME, "id": TEXT, "choices": _CHOICES},
)
OPENAI_RESPONSE = st.fixed_dictionaries(
    {"object": st.just("response"), "usage": _openai_usage("input", "output")},
    optional={"model": NAME, "output": _maybe(st.lists(GARBAGE, max_size=2))},
)
ANTHROPIC_MESSAGE = st.fixed_dictionaries(
    {
        "type": st.just("message"),
        "usage": _maybe(
            st.fixed_dictionaries(
                {"input_tokens": MAYBE_COUNT, "output_tokens": MAYBE_COUNT},
                optional={
                    "cache_read_input_tokens": MAYBE_COUNT,
                    "cache_creation_input_tokens": MAYBE_COUNT,
                },
            )
        ),
    },
    optional={"model": NAME, "id": TEXT, "content": _maybe(st.lists(GARBAGE, max_size=2))},
)
GEMINI = st.fixed_dictionaries(
    {
        "usageMetadata": _maybe(
            st.fixed_dictionaries(
                {"promptTokenCount": MAYBE_COUNT},
                optional={
                    "candidatesTokenCount": MAYBE_COUNT,
                    "thoughtsTokenCount": MAYBE_COUNT,
                    "cachedContentTokenCount": MAYBE_COUNT,
                },
            )
        )
    },
    optional={"modelVersion": NAME, "candidates": _maybe(st.lists(GARBAGE, max_size=2))},
)
RESPONSE_JSON = st.one_of(OPENAI_CHAT, OPENAI_RESPONSE, ANTHROPIC_MESSAGE, GEMINI)


@st.composite
def _as_object(draw: st.DrawFn) -> Fields:
    """A JSON response as an object of no known SDK, its ``object``/``type`` marker kept,
    some of its other fields lazy (reading them raises)."""
    fields = draw(st.one_of(OPENAI_CHAT, ANTHROPIC_MESSAGE))
    nested = {k: Fields(v) if isinstance(v, dict) else v for k, v in fields.items()}
    others = sorted(set(fields) - {"object", "type"})
    raising = draw(st.frozensets(st.sampled_from(["usage", "model", "id", "choices", *others])))
    for name in raising:
        nested.pop(name, None)
    return Fields(nested, raising)


def _sdk_objects() -> st.SearchStrategy[Any]:
    """The SDKs' own response classes, built without validation: garbage inside."""
    from anthropic.types import Message
    from google.genai import types as genai_types
    from openai.types import CompletionUsage
    from openai.types.chat import ChatCompletion

    chat = st.builds(
        lambda usage, model: ChatCompletion.model_construct(
            id="chatcmpl-x",
            object="chat.completion",
            choices=[],
            created=0,
            model=model,
            usage=usage,
        ),
        _maybe(
            st.builds(
                lambda p, c: CompletionUsage.model_construct(prompt_tokens=p, completion_tokens=c),
                MAYBE_COUNT,
                MAYBE_COUNT,
            )
        ),
        NAME,
    )
    message_usage = st.fixed_dictionaries(
        {"input_tokens": MAYBE_COUNT, "output_tokens": MAYBE_COUNT}
    ).map(Fields)
    message = st.builds(
        lambda usage, model: Message.model_construct(
            id="msg_x", type="message", role="assistant", content=[], model=model, usage=usage
        ),
        _maybe(message_usage),
        NAME,
    )
    gemini = st.builds(
        lambda metadata, version: genai_types.GenerateContentResponse.model_construct(
            usage_metadata=metadata, model_version=version
        ),
        _maybe(
            st.builds(
                lambda p, c: genai_types.GenerateContentResponseUsageMetadata.model_construct(
                    prompt_token_count=p, candidates_token_count=c
                ),
                MAYBE_COUNT,
                MAYBE_COUNT,
            )
        ),
        NAME,
    )
    return st.one_of(chat, message, gemini)


RESULTS: dict[str, tuple[st.SearchStrategy[Any], bool]] = {
    "json": (RESPONSE_JSON, True),
    "look-alike": (_as_object(), True),
    "sdk-object": (st.deferred(_sdk_objects), True),
    "hostile": (st.builds(Hostile), True),
    "hostile-dict": (st.builds(HostileDict, RESPONSE_JSON), True),
    "text": (st.text(max_size=8), True),
    "no-response": (
        st.sampled_from([None, 0, 42, 1.5, [], [1, 2], {}, {"data": "value"}, b"x"]),
        False,
    ),
}
"""What a function may return, by family: (values, whether each is a call to record).

LLM responses (recognised by their marker or class), text (its usage estimated) and
results that raise when read are paid calls, each recorded once; a result that is no LLM
response and raises nothing is not recorded (unless an extractor was meant to read it)."""

# -- stream items -----------------------------------------------------------------------------

STREAM_ITEMS = st.one_of(
    st.text(max_size=6),
    st.fixed_dictionaries(
        {"object": st.just("chat.completion.chunk")},
        optional={
            "model": NAME,
            "choices": _maybe(st.lists(_object({"delta": _object({"content": TEXT})}), max_size=2)),
            "usage": _openai_usage(),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["message_start", "message_delta", "content_block_delta"])},
        optional={
            "message": _object(
                {"usage": _object({"input_tokens": MAYBE_COUNT, "output_tokens": MAYBE_COUNT})}
            ),
            "usage": _object({"output_tokens": MAYBE_COUNT}),
            "delta": _object({"type": st.just("text_delta"), "text": TEXT}),
        },
    ),
    GEMINI,
    st.builds(Hostile),
    st.builds(HostileDict, RESPONSE_JSON),
    GARBAGE,
)

# -- extract_usage= ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Extractor:
    """An ``extract_usage=`` callback: returns ``returned``, or raises ``raises``.

    ``valid`` when what it returns is usage llm_toll takes as is; then ``tokens`` are its
    input and output counts. ``failing`` when it raises or returns what is no usage.
    """

    returned: Any = None
    raises: type[Exception] | None = None
    valid: bool = False
    tokens: tuple[int, int] | None = None

    def __call__(self, response: Any) -> Any:
        if self.raises is not None:
            raise self.raises("extractor")
        return self.returned

    @property
    def failing(self) -> bool:
        return self.raises is not None or (self.returned is not None and not self.valid)


def _valid(draw_in: int, draw_out: int, shape: str) -> Extractor:
    returned: Any = {
        "tuple": ("my-model", draw_in, draw_out),
        "dict": {"input_tokens": draw_in, "output_tokens": draw_out, "model": "my-model"},
        "usage": Usage(draw_in, draw_out),
        "extracted": ExtractedUsage(Usage(draw_in, draw_out), model="my-model"),
    }[shape]
    return Extractor(returned, valid=True, tokens=(draw_in, draw_out))


def _is_count(value: object) -> bool:
    return type(value) is int and 0 <= value <= 5_000


_GARBAGE_USAGE = st.builds(Usage, MAYBE_COUNT, MAYBE_COUNT, MAYBE_COUNT).filter(
    lambda u: not all(map(_is_count, (u.input_tokens, u.output_tokens, u.cache_read_input_tokens)))
)
_GARBAGE_RETURNS = st.one_of(
    SOME_GARBAGE,
    st.tuples(NAME, MAYBE_COUNT, MAYBE_COUNT).filter(
        lambda t: not (isinstance(t[0], str) and _is_count(t[1]) and _is_count(t[2]))
    ),
    st.fixed_dictionaries({"input_tokens": GARBAGE, "output_tokens": MAYBE_COUNT}),
    _GARBAGE_USAGE,
    st.builds(ExtractedUsage, st.one_of(_GARBAGE_USAGE, GARBAGE)),
    st.builds(
        ExtractedUsage,
        st.just(Usage(1, 1)),
        model=NOT_TEXT,
    ),
    st.builds(
        ExtractedUsage,
        st.just(Usage(1, 1)),
        provider=st.builds(Hostile),
        estimated=st.sampled_from(["yes", 1, None]),
    ),
)
EXTRACTORS: dict[str, st.SearchStrategy[Extractor | None]] = {
    "none": st.none(),  # no extract_usage=
    "finds-nothing": st.just(Extractor(None)),  # auto-detection decides
    "valid": st.builds(
        _valid, COUNT, COUNT, st.sampled_from(["tuple", "dict", "usage", "extracted"])
    ),
    "garbage": st.builds(Extractor, _GARBAGE_RETURNS),
    "raises": st.builds(Extractor, raises=st.sampled_from([Trap, UnprintableTrap, ValueError])),
}
"""``extract_usage=`` callbacks, by what they do."""
