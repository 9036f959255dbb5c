"""Tests of the bundled GPT Image API simulator."""
