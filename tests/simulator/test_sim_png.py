"""The pure-Python PNG encoder: sizes, validity, padding, streaming."""

from __future__ import annotations

import pytest

from airflow_provider_gptimage.simulator.png import (
    PADDING_CHUNK_TYPE,
    PngPlan,
    image_size,
    parse_aspect_ratio,
)

from .conftest import png_info


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, (1, 1)), ("auto", (1, 1)), ("16:9", (16, 9)), ("21:9", (21, 9)), ("3:4", (3, 4))],
)
def test_parse_aspect_ratio(value: str | None, expected: tuple[int, int]) -> None:
    assert parse_aspect_ratio(value) == expected


@pytest.mark.parametrize("value", ["", "1:0", "0:1", "16x9", "16:9:1", "-1:2", "a:b", "1.5:1", "123456:1"])
def test_parse_aspect_ratio_rejects(value: str) -> None:
    assert parse_aspect_ratio(value) is None


@pytest.mark.parametrize(
    ("ratio", "long_side", "size"),
    [("1:1", 256, (256, 256)), ("21:9", 256, (256, 110)), ("2:3", 300, (200, 300)), ("1000:1", 64, (64, 1))],
)
def test_image_size(ratio: str, long_side: int, size: tuple[int, int]) -> None:
    assert image_size(ratio, long_side) == size


def test_plan_encodes_a_valid_png_of_its_announced_size() -> None:
    plan = PngPlan(40, 30, "a seed")
    data = plan.to_bytes()
    assert len(data) == plan.size
    info = png_info(data)
    assert (info.width, info.height) == (40, 30)
    assert data[24:29] == bytes([8, 2, 0, 0, 0])  # 8-bit RGB, no interlace


def test_colours_follow_the_seed() -> None:
    assert PngPlan(8, 8, "one").to_bytes() == PngPlan(8, 8, "one").to_bytes()
    assert PngPlan(8, 8, "one").to_bytes() != PngPlan(8, 8, "two").to_bytes()


def test_padding_is_streamed_in_blocks_and_valid() -> None:
    plan = PngPlan(16, 16, "padded", padding_bytes=3 * 1024 * 1024 + 5)
    blocks = list(plan.iter_bytes(block_size=1 << 20))
    assert max(len(b) for b in blocks) <= 1 << 20
    data = b"".join(blocks)
    assert len(data) == plan.size
    info = png_info(data)
    assert info.chunks[1] == (PADDING_CHUNK_TYPE, 3 * 1024 * 1024 + 5)
    assert PADDING_CHUNK_TYPE[0:1].islower()  # ancillary: decoders may ignore it
