"""Destinations and names: resolve_destination, check_destination, output_names, validate_filename."""

from __future__ import annotations

import os

import pytest

from airflow_provider_gptimage._compat import path_conn_id
from airflow_provider_gptimage.exceptions import GPTImageConfigurationError, GPTImageValidationError
from airflow_provider_gptimage.outputs import (
    check_destination,
    output_names,
    path_uri,
    resolve_destination,
    sidecar_name,
    validate_filename,
)


class TestResolveDestination:
    def test_file_uri(self, tmp_path):
        path = resolve_destination(f"file://{tmp_path}/images/")
        assert path.protocol == "file"
        assert path_uri(path) == f"file://{tmp_path}/images"

    def test_plain_absolute_path_is_a_file_uri(self, tmp_path):
        path = resolve_destination(str(tmp_path))
        assert path.protocol == "file"
        assert path.path == str(tmp_path)

    def test_object_storage_path_is_kept(self, tmp_path):
        from airflow.sdk import ObjectStoragePath

        given = ObjectStoragePath(f"file://{tmp_path}")
        assert resolve_destination(given) is given

    def test_conn_id_is_attached(self, s3_conn_id):
        path = resolve_destination("s3://bucket/prefix/", conn_id=s3_conn_id)
        bucket = path.bucket.rsplit("@", 1)[-1]  # Airflow 3.0 shows the conn id as the bucket's userinfo
        assert (path.protocol, bucket, path_conn_id(path)) == ("s3", "bucket", s3_conn_id)
        assert path_uri(path) == "s3://bucket/prefix"

    def test_conn_id_is_added_to_a_path(self, s3_conn_id):
        from airflow.sdk import ObjectStoragePath

        path = resolve_destination(ObjectStoragePath("s3://bucket/prefix/"), conn_id=s3_conn_id)
        assert path_conn_id(path) == s3_conn_id

    def test_two_different_connections_are_refused(self):
        from airflow.sdk import ObjectStoragePath

        with pytest.raises(GPTImageValidationError, match="give only one") as info:
            resolve_destination(ObjectStoragePath("s3://bucket/p/", conn_id="one"), conn_id="two")
        assert info.value.parameter == "destination"

    @pytest.mark.parametrize("bad", ["images/out", "./images", "bucket/prefix", "", "   "])
    def test_relative_or_schemeless_is_refused(self, bad):
        with pytest.raises(GPTImageValidationError) as info:
            resolve_destination(bad)
        assert info.value.parameter == "destination"

    def test_file_uri_with_a_host_is_refused(self):
        with pytest.raises(GPTImageValidationError, match="three slashes"):
            resolve_destination("file://tmp/images")

    def test_bucketless_uri_is_refused(self):
        with pytest.raises(GPTImageValidationError, match="no bucket"):
            resolve_destination("s3://")

    def test_scheme_without_provider_says_what_to_install(self):
        with pytest.raises(GPTImageValidationError, match="apache-airflow-providers-google") as info:
            resolve_destination("gs://bucket/images/")
        assert info.value.parameter == "destination"
        assert "gcsfs" in str(info.value)

    def test_unknown_scheme_is_refused(self):
        with pytest.raises(GPTImageValidationError, match="'nosuchfs'"):
            resolve_destination("nosuchfs://bucket/images/")

    def test_not_a_string(self):
        with pytest.raises(GPTImageValidationError, match="folder URI string"):
            resolve_destination(42)  # type: ignore[arg-type]


class TestCheckLocalDestination:
    def test_missing_folder_is_created_and_left_clean(self, tmp_path):
        folder = tmp_path / "a" / "b"
        check_destination(resolve_destination(str(folder)))
        assert folder.is_dir()
        assert list(folder.iterdir()) == []  # the write-check marker is gone

    def test_a_file_is_not_a_folder(self, tmp_path):
        (tmp_path / "taken").write_bytes(b"x")
        with pytest.raises(GPTImageConfigurationError, match="destination"):
            check_destination(resolve_destination(str(tmp_path / "taken")))

    @pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores file permissions")
    def test_read_only_folder(self, tmp_path):
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
        try:
            with pytest.raises(GPTImageConfigurationError, match="permission"):
                check_destination(resolve_destination(str(folder)))
        finally:
            folder.chmod(0o700)


class TestNames:
    def test_single_image_uses_the_filename(self):
        assert output_names("job-1", 1, "SKU-123", "png") == ["SKU-123.png"]

    def test_several_images_get_an_index(self):
        assert output_names("job-1", 3, "sku", "jpg") == ["sku-1.jpg", "sku-2.jpg", "sku-3.jpg"]

    def test_default_name_is_the_job_id(self):
        assert output_names("3ebe82c2-aa/..", 1, None, "webp") == ["3ebe82c2-aa_...webp"]
        assert output_names("3ebe82c2-aa", 2, None, "png") == ["3ebe82c2-aa-1.png", "3ebe82c2-aa-2.png"]

    def test_an_image_extension_in_the_filename_is_dropped(self):
        assert validate_filename("sku.PNG") == "sku"
        assert validate_filename("shoe.v2") == "shoe.v2"

    def test_sidecar_name(self):
        assert sidecar_name("sku-1.png") == "sku-1.json"

    @pytest.mark.parametrize(
        "bad",
        ["../etc/passwd", "..", ".", "a/b", "/abs", "a\\b", "nul\x00byte", ".hidden", "", "-flag", "a b", "x" * 201],
    )
    def test_unsafe_filenames_are_refused(self, bad):
        with pytest.raises(GPTImageValidationError) as info:
            output_names("job-1", 1, bad, "png")
        assert info.value.parameter == "filename"

    def test_traversal_message_names_the_rule(self):
        with pytest.raises(GPTImageValidationError, match="path traversal"):
            validate_filename("../../x")

    def test_count_and_extension_are_checked(self):
        with pytest.raises(GPTImageValidationError):
            output_names("job-1", 0, None, "png")
        with pytest.raises(GPTImageValidationError):
            output_names("job-1", 1, None, "p/ng")
