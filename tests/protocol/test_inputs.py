"""Input rules of ``createTask``: :func:`build_request`, :func:`validate_static_arguments`, the body."""

from __future__ import annotations

import json

import pytest

from airflow_provider_gptimage.exceptions import GPTImageError, GPTImageValidationError
from airflow_provider_gptimage.protocol import (
    CREATE_ENDPOINT,
    DOCUMENTED_ASPECT_RATIOS,
    MAX_PROMPT_CHARS,
    MODEL,
    RECORD_ENDPOINT,
    RESOLUTIONS,
    GenerationRequest,
    build_request,
    is_templated,
    validate_static_arguments,
)


def test_constants_match_the_api_contract():
    assert MODEL == "gpt-image-2-text-to-image"
    assert MAX_PROMPT_CHARS == 20_000
    assert RESOLUTIONS == ("1K", "2K", "4K")
    assert set(DOCUMENTED_ASPECT_RATIOS) == {"auto", "1:1", "4:5", "3:4", "2:3", "16:9", "9:16", "21:9"}
    assert CREATE_ENDPOINT == "/api/v1/jobs/createTask"
    assert RECORD_ENDPOINT == "/api/v1/jobs/recordInfo"


# --- invalid arguments: (kwargs for build_request, parameter the error must name) ---------------------------
INVALID = [
    pytest.param({"prompt": ""}, "prompt", id="prompt-empty"),
    pytest.param({"prompt": "   \n\t "}, "prompt", id="prompt-whitespace-only"),
    pytest.param({"prompt": None}, "prompt", id="prompt-none"),
    pytest.param({"prompt": 42}, "prompt", id="prompt-int"),
    pytest.param({"prompt": b"a cat"}, "prompt", id="prompt-bytes"),
    pytest.param({"prompt": ["a cat"]}, "prompt", id="prompt-list"),
    pytest.param({"prompt": "x" * (MAX_PROMPT_CHARS + 1)}, "prompt", id="prompt-20001-chars"),
    pytest.param({"prompt": "a cat", "model": "gpt-image-1"}, "model", id="model-unknown"),
    pytest.param({"prompt": "a cat", "model": ""}, "model", id="model-empty"),
    pytest.param({"prompt": "a cat", "model": None}, "model", id="model-none"),
    pytest.param({"prompt": "a cat", "model": MODEL.upper()}, "model", id="model-wrong-case"),
    pytest.param({"prompt": "a cat", "resolution": "8K"}, "resolution", id="resolution-8K"),
    pytest.param({"prompt": "a cat", "resolution": "1k"}, "resolution", id="resolution-lowercase"),
    pytest.param({"prompt": "a cat", "resolution": ""}, "resolution", id="resolution-empty"),
    pytest.param({"prompt": "a cat", "resolution": " 1K"}, "resolution", id="resolution-padded"),
    pytest.param({"prompt": "a cat", "resolution": 1}, "resolution", id="resolution-int"),
    pytest.param({"prompt": "a cat", "resolution": ["1K"]}, "resolution", id="resolution-list"),
    pytest.param({"prompt": "a cat", "aspect_ratio": "0:1"}, "aspect_ratio", id="ratio-zero-width"),
    pytest.param({"prompt": "a cat", "aspect_ratio": "1:0"}, "aspect_ratio", id="ratio-zero-height"),
    pytest.param({"prompt": "a cat", "aspect_ratio": "16/9"}, "aspect_ratio", id="ratio-slash"),
    pytest.param({"prompt": "a cat", "aspect_ratio": "-1:2"}, "aspect_ratio", id="ratio-negative"),
    pytest.param({"prompt": "a cat", "aspect_ratio": "abc"}, "aspect_ratio", id="ratio-abc"),
    pytest.param({"prompt": "a cat", "aspect_ratio": ""}, "aspect_ratio", id="ratio-empty"),
    pytest.param({"prompt": "a cat", "aspect_ratio": "1.5:1"}, "aspect_ratio", id="ratio-decimal"),
    pytest.param({"prompt": "a cat", "aspect_ratio": "16:9:1"}, "aspect_ratio", id="ratio-three-parts"),
    pytest.param({"prompt": "a cat", "aspect_ratio": " 16:9"}, "aspect_ratio", id="ratio-padded"),
    pytest.param({"prompt": "a cat", "aspect_ratio": "16:9\n"}, "aspect_ratio", id="ratio-trailing-newline"),
    pytest.param({"prompt": "a cat", "aspect_ratio": "AUTO"}, "aspect_ratio", id="ratio-AUTO"),
    pytest.param({"prompt": "a cat", "aspect_ratio": 1.5}, "aspect_ratio", id="ratio-float"),
    pytest.param({"prompt": "a cat", "aspect_ratio": (16, 9)}, "aspect_ratio", id="ratio-tuple"),
    pytest.param({"prompt": "a cat", "quality": 3}, "quality", id="quality-int"),
    pytest.param({"prompt": "a cat", "quality": ""}, "quality", id="quality-empty"),
    pytest.param({"prompt": "a cat", "quality": "  "}, "quality", id="quality-blank"),
    pytest.param({"prompt": "a cat", "quality": ["high"]}, "quality", id="quality-list"),
    pytest.param({"prompt": "a cat", "output_format": 1}, "output_format", id="format-int"),
    pytest.param({"prompt": "a cat", "output_format": ""}, "output_format", id="format-empty"),
    pytest.param({"prompt": "a cat", "output_format": {"png": True}}, "output_format", id="format-dict"),
]


@pytest.mark.parametrize(("kwargs", "parameter"), INVALID)
def test_build_request_rejects(kwargs, parameter):
    with pytest.raises(GPTImageValidationError) as info:
        build_request(**kwargs)
    error = info.value
    assert isinstance(error, ValueError)
    assert isinstance(error, GPTImageError)
    assert error.parameter == parameter
    assert f"`{parameter}`" in str(error)
    assert error.rule
    assert error.rule in str(error)
    assert "Nothing was sent" in str(error)
    assert not error.retryable


# A prompt of None is left to execution time at parse time (see test_validate_static_arguments_accepts).
INVALID_STATIC = [case for case in INVALID if case.values[0].get("prompt") is not None]


@pytest.mark.parametrize(("kwargs", "parameter"), INVALID_STATIC)
def test_validate_static_arguments_rejects_the_same(kwargs, parameter):
    with pytest.raises(GPTImageValidationError) as info:
        validate_static_arguments(kwargs)
    assert info.value.parameter == parameter


def test_huge_invalid_value_is_shortened_in_the_message():
    with pytest.raises(GPTImageValidationError) as info:
        build_request("a cat", model="m" * 5_000)
    assert len(str(info.value)) < 300
    assert "..." in str(info.value)


def test_overlong_prompt_message_gives_limit_and_length_not_the_prompt():
    prompt = "secret-ish prompt " * 1200
    with pytest.raises(GPTImageValidationError) as info:
        build_request(prompt)
    message = str(info.value)
    assert "20,000" in message
    assert f"{len(prompt):,}" in message
    assert prompt[:40] not in message


def test_non_string_prompt_message_shows_the_type():
    with pytest.raises(GPTImageValidationError, match="int"):
        build_request(123)


def test_first_offending_parameter_is_named():
    # The model is checked first, then the prompt.
    with pytest.raises(GPTImageValidationError) as info:
        build_request("", model="nope", resolution="8K")
    assert info.value.parameter == "model"
    with pytest.raises(GPTImageValidationError) as info:
        build_request("", resolution="8K")
    assert info.value.parameter == "prompt"


# --- valid arguments ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param("a", id="one-char"),
        pytest.param("x" * MAX_PROMPT_CHARS, id="exactly-20000"),
        pytest.param("é" * MAX_PROMPT_CHARS, id="20000-non-ascii-chars"),
        pytest.param("  padded  ", id="padded-kept-as-is"),
    ],
)
def test_valid_prompts(prompt):
    request, warnings = build_request(prompt)
    assert request.prompt == prompt
    assert warnings == []


@pytest.mark.parametrize("ratio", DOCUMENTED_ASPECT_RATIOS)
def test_documented_ratios_are_accepted_without_warning(ratio):
    request, warnings = build_request("a cat", aspect_ratio=ratio)
    assert request.aspect_ratio == ratio
    assert warnings == []
    assert validate_static_arguments({"aspect_ratio": ratio}) == []


@pytest.mark.parametrize("ratio", ["5:4", "3:2", "1:2", "100:1", "32:9"])
def test_undocumented_valid_ratio_warns_but_passes(ratio):
    request, warnings = build_request("a cat", aspect_ratio=ratio)
    assert request.aspect_ratio == ratio
    assert len(warnings) == 1
    assert ratio in warnings[0]
    assert "documented" in warnings[0]
    assert validate_static_arguments({"aspect_ratio": ratio}) == warnings


@pytest.mark.parametrize("resolution", [None, *RESOLUTIONS])
def test_valid_resolutions(resolution):
    request, _ = build_request("a cat", resolution=resolution)
    assert request.resolution == resolution


def test_build_request_returns_a_frozen_request_with_every_option():
    request, warnings = build_request(
        "a cat", aspect_ratio="16:9", resolution="2K", quality="high", output_format="png", model=MODEL
    )
    assert request == GenerationRequest(
        prompt="a cat", aspect_ratio="16:9", resolution="2K", quality="high", output_format="png", model=MODEL
    )
    assert warnings == []
    with pytest.raises(AttributeError):
        request.prompt = "a dog"  # type: ignore[misc]


# --- body ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "expected_input"),
    [
        pytest.param({}, {"prompt": "a cat"}, id="only-prompt"),
        pytest.param({"aspect_ratio": "1:1"}, {"prompt": "a cat", "aspect_ratio": "1:1"}, id="ratio"),
        pytest.param({"resolution": "4K"}, {"prompt": "a cat", "resolution": "4K"}, id="resolution"),
        pytest.param({"quality": "high"}, {"prompt": "a cat", "quality": "high"}, id="quality"),
        pytest.param({"output_format": "png"}, {"prompt": "a cat", "output_format": "png"}, id="format"),
        pytest.param(
            {"aspect_ratio": "auto", "resolution": "1K", "quality": "low", "output_format": "jpeg"},
            {"prompt": "a cat", "aspect_ratio": "auto", "resolution": "1K", "quality": "low", "output_format": "jpeg"},
            id="all",
        ),
    ],
)
def test_body_leaves_out_unset_options(kwargs, expected_input):
    request, _ = build_request("a cat", **kwargs)
    body = request.body()
    assert body == {"model": MODEL, "input": expected_input}
    assert json.loads(json.dumps(body)) == body
    for value in body["input"].values():
        assert value is not None


def test_body_of_a_directly_built_request():
    assert GenerationRequest(prompt="p").body() == {"model": MODEL, "input": {"prompt": "p"}}


# --- templates -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{{ params.prompt }}", True),
        ("a {{ ds }} cat", True),
        ("{% if x %}a{% endif %}", True),
        ("a cat", False),
        ("{ not a template }", False),
        ("", False),
        (None, False),
        (42, False),
        (["{{ x }}"], False),
    ],
)
def test_is_templated(value, expected):
    assert is_templated(value) is expected


@pytest.mark.parametrize(
    "name",
    ["prompt", "model", "resolution", "aspect_ratio", "quality", "output_format"],
)
def test_validate_static_arguments_skips_templated_values(name):
    assert validate_static_arguments({name: "{{ params.value }}"}) == []
    assert validate_static_arguments({name: "{% raw %}x{% endraw %}"}) == []


def test_validate_static_arguments_skips_a_templated_overlong_prompt():
    assert validate_static_arguments({"prompt": "{{ x }}" + "y" * MAX_PROMPT_CHARS}) == []


def test_validate_static_arguments_checks_the_rest_when_one_is_templated():
    with pytest.raises(GPTImageValidationError) as info:
        validate_static_arguments({"prompt": "{{ params.p }}", "resolution": "8K"})
    assert info.value.parameter == "resolution"


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param({}, id="nothing"),
        pytest.param({"prompt": None}, id="prompt-none-left-to-execution"),
        pytest.param({"prompt": "a cat", "model": MODEL, "resolution": "2K"}, id="valid"),
        pytest.param({"prompt": "a cat", "resolution": None, "quality": None, "output_format": None}, id="nones"),
        pytest.param({"prompt": "a cat", "aspect_ratio": None}, id="ratio-none"),
        pytest.param({"unknown_argument": object()}, id="unknown-names-ignored"),
    ],
)
def test_validate_static_arguments_accepts(arguments):
    assert validate_static_arguments(arguments) == []
