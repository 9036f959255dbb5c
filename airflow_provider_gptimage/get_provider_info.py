"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    """Return the provider info: connection type and form, hook, operator, sensor and trigger."""
    from airflow_provider_gptimage import __version__

    return {
        "package-name": "airflow-provider-gptimage",
        "name": "GPT Image",
        "description": "GPT Image 2 text-to-image job API: deferrable operator, sensor, trigger, object-storage "
        "outputs and an offline simulator.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "GPT Image",
                "external-doc-url": "https://aigptimage.com",
                "tags": ["service"],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_gptimage.hooks.gptimage.GPTImageHook",
                "hook-name": "GPT Image",
                "connection-type": "gptimage",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login", "extra"],
                    "relabeling": {"password": "API key", "host": "Base URL (optional)"},
                    "placeholders": {"host": "https://aigptimage.com", "password": "sk-..."},
                },
                "conn-fields": {
                    "verify": {
                        "label": "Verify TLS",
                        "description": "true (default), false (no certificate check: insecure), or the absolute path "
                        "of a CA bundle file (PEM) to trust instead of the default store, e.g. a corporate CA. "
                        "Applies in workers and in the triggerer.",
                        "schema": {"type": ["string", "null"]},
                    }
                },
            }
        ],
        "hooks": [{"integration-name": "GPT Image", "python-modules": ["airflow_provider_gptimage.hooks.gptimage"]}],
        "operators": [
            {
                "integration-name": "GPT Image",
                "python-modules": [
                    "airflow_provider_gptimage.operators.gptimage",
                    "airflow_provider_gptimage.operators.batch",
                    "airflow_provider_gptimage.operators.gallery",
                    "airflow_provider_gptimage.operators.catalog",
                ],
            }
        ],
        "sensors": [
            {"integration-name": "GPT Image", "python-modules": ["airflow_provider_gptimage.sensors.gptimage"]}
        ],
        "triggers": [
            {
                "integration-name": "GPT Image",
                "python-modules": [
                    "airflow_provider_gptimage.triggers.gptimage",
                    "airflow_provider_gptimage.triggers.batch",
                ],
            }
        ],
        "extra-links": [
            "airflow_provider_gptimage.links.GPTImageResultLink",
            "airflow_provider_gptimage.links.GPTImageGalleryLink",
        ],
    }
