"""Names checked before a job is paid for: blank or rendered-``None`` names, and names too long in bytes once a
copy's temporary name and suffixes are added (local NAME_MAX, object-store key length)."""

from __future__ import annotations

import pytest

from airflow_provider_gptimage.exceptions import GPTImageValidationError
from airflow_provider_gptimage.outputs import check_name_fits, resolve_destination, validate_filename
from airflow_provider_gptimage.outputs.names import INDEX_SUFFIX, TEMP_NAME_EXTRA_BYTES, default_stem


@pytest.mark.parametrize("rendered", ["", "   ", "None", " None ", "\t"])
def test_an_empty_or_none_rendering_is_refused(rendered):
    with pytest.raises(GPTImageValidationError, match="empty, blank or 'None'") as info:
        validate_filename(rendered)
    assert info.value.parameter == "filename"


def test_the_byte_limit_is_exact_and_the_file_system_agrees(tmp_path):
    folder = resolve_destination(str(tmp_path))
    room = 255 - TEMP_NAME_EXTRA_BYTES
    longest = "é" * (room // 2)  # two bytes each
    check_name_fits(validate_filename(longest), folder)
    with (tmp_path / f".{longest}{INDEX_SUFFIX}.part-{'f' * 32}").open("wb"):  # the file system takes it indeed
        pass
    with pytest.raises(GPTImageValidationError, match="name limit"):
        check_name_fits(longest + "éé", folder)
    with pytest.raises(OSError, match="File name too long"):
        (tmp_path / f".{longest}éé{INDEX_SUFFIX}.part-{'f' * 32}").open("wb")


def test_non_ascii_names_count_utf8_bytes(tmp_path):
    folder = resolve_destination(str(tmp_path))
    name = "商品" * 40  # 80 characters (within the 200-character rule), 240 bytes in UTF-8
    assert validate_filename(name) == name
    with pytest.raises(GPTImageValidationError, match=r"is 240 bytes in UTF-8.*over the 255-byte name limit") as info:
        check_name_fits(name, folder)
    assert f"use at most {255 - TEMP_NAME_EXTRA_BYTES} bytes" in str(info.value)


def test_a_folder_not_created_yet_is_measured_on_its_parent(tmp_path):
    check_name_fits("sku", resolve_destination(str(tmp_path / "not" / "yet")))
    with pytest.raises(GPTImageValidationError, match="name limit"):
        check_name_fits("x" * 220, resolve_destination(str(tmp_path / "not" / "yet")))


def test_an_object_key_counts_the_whole_prefix(s3_conn_id):
    short = resolve_destination("s3://bucket/catalog/", conn_id=s3_conn_id)
    check_name_fits("x" * 200, short)  # no temporary name on object stores: 200 + "-16.webp" fits
    deep = resolve_destination("s3://bucket/" + "p" * 900 + "/", conn_id=s3_conn_id)
    with pytest.raises(GPTImageValidationError, match="1024-byte key limit"):
        check_name_fits("é" * 60, deep)  # 120 bytes + 901 of prefix + 8 of suffix


def test_a_default_name_from_the_job_id_is_ascii():
    assert default_stem("job-✓-ünïcode/..") == "job-_-_n_code_.."
