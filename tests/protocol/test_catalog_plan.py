"""The catalog's pure decisions: new, changed, unchanged, removed; the spend guard; legacy fingerprints."""

from __future__ import annotations

import pytest

from airflow_provider_gptimage import protocol
from airflow_provider_gptimage.exceptions import GPTImageSpendLimitError, GPTImageValidationError
from airflow_provider_gptimage.protocol.catalog import (
    CatalogOptions,
    CatalogPlan,
    check_force,
    check_max_new_images,
    check_spend,
    plan_catalog,
    resolution_mix,
    sidecar_fingerprint,
)


def test_each_key_is_new_changed_unchanged_or_removed():
    plan = plan_catalog([("a", "f1"), ("b", "f2"), ("c", "f3")], {"a": "f1", "b": "old", "z": "f9"})
    assert (plan.new, plan.changed, plan.unchanged, plan.removed) == (("c",), ("b",), ("a",), ("z",))
    assert plan.to_create == ("c", "b")
    assert plan.to_pay == 2


def test_an_unknown_fingerprint_counts_as_changed_and_force_changes_everything():
    assert plan_catalog([("a", "f1")], {"a": None}).changed == ("a",)
    forced = plan_catalog([("a", "f1"), ("b", "f2")], {"a": "f1"}, force=True)
    assert (forced.new, forced.changed, forced.unchanged) == (("b",), ("a",), ())


def test_a_key_whose_request_has_a_job_in_flight_is_attached_not_paid():
    plan = plan_catalog([("a", "f1"), ("b", "f2")], {}, in_flight={"f2", "other"})
    assert plan.attached == ("b",)
    assert plan.to_pay == 1
    assert "1 re-attached" in plan.line()


def test_the_plan_line_says_everything_in_one_line():
    line = plan_catalog([(f"k{i}", str(i)) for i in range(8)], {"k0": "0", "gone": "x"}).line()
    assert "\n" not in line
    assert line.startswith("Catalog plan: 7 new, 0 changed, 1 unchanged, 1 removed; 7 job(s) to pay for: k1, k2")
    assert line.endswith(", ...")


def test_the_spend_guard_names_how_many_and_why():
    plan = plan_catalog([(f"k{i}", "new") for i in range(5)], {f"k{i}": "old" for i in range(5)})
    check_spend(plan, None)
    check_spend(plan, 5)
    with pytest.raises(GPTImageSpendLimitError) as caught:
        check_spend(plan, 4)
    assert (caught.value.needed, caught.value.allowed, caught.value.retryable) == (5, 4, False)
    assert "needs 5 new job(s)" in str(caught.value) and "max_new_images=4" in str(caught.value)
    assert "broken template" in str(caught.value) and "dry_run=True" in str(caught.value)
    assert "k0" in str(caught.value)


@pytest.mark.parametrize("value", [-1, 1.5, "3", True])
def test_max_new_images_must_be_a_whole_number(value):
    with pytest.raises(GPTImageValidationError, match="max_new_images"):
        check_max_new_images(value)
    assert check_max_new_images(0) == 0 and check_max_new_images(None) is None


def test_the_plan_survives_xcom():
    plan = plan_catalog([("a", "1"), ("b", "2"), ("c", "3")], {"a": "1", "b": "x", "d": "4"}, {"3"})
    assert CatalogPlan.from_primitives(plan.to_primitives()) == plan
    assert CatalogPlan.from_primitives({"schema": "other"}) is None


def test_a_sidecar_without_a_fingerprint_is_read_from_the_request_it_kept():
    request, _ = protocol.build_request(prompt="a lamp", aspect_ratio="1:1", resolution="2K")
    legacy = {"model": request.model, "prompt": "a lamp", "parameters": {"aspect_ratio": "1:1", "resolution": "2K"}}
    assert sidecar_fingerprint(legacy) == protocol.fingerprint(request)
    assert sidecar_fingerprint({**legacy, "fingerprint": "abc"}) == "abc"
    assert sidecar_fingerprint({**legacy, "parameters": {"seed": 3}}) is None  # a field no request has
    assert sidecar_fingerprint({"prompt": "x"}) is None


def test_the_resolution_mix_counts_the_default_as_1k():
    assert resolution_mix([None, "1K", "4K"]) == {"1K": 2, "4K": 1}


def test_force_with_keys_changes_those_keys_only():
    forced = plan_catalog([("a", "f1"), ("b", "f2"), ("c", "f3")], {"a": "f1", "b": "f2"}, force=frozenset({"b"}))
    assert (forced.new, forced.changed, forced.unchanged) == (("c",), ("b",), ("a",))
    assert plan_catalog([("a", "f1")], {"a": "f1"}, force=frozenset()).unchanged == ("a",)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), (["SKU-7"], frozenset({"SKU-7"})), (("a", "b"), frozenset({"a", "b"})),
     ({"a"}, frozenset({"a"})), ([], frozenset())],
)  # fmt: skip
def test_force_is_a_bool_or_the_keys_to_regenerate(value, expected):
    assert check_force(value) == expected
    assert CatalogOptions.of(force=value).force == expected


@pytest.mark.parametrize("value", ["SKU-7", "true", 1, None, ["SKU-7", 3], [""], {"SKU-7": True}])
def test_force_refuses_anything_else_naming_the_argument(value):
    with pytest.raises(GPTImageValidationError, match="force") as caught:
        check_force(value)
    assert "list of the keys to regenerate" in str(caught.value)
