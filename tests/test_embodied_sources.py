"""The embodied defaults are estimates with linked sources and a checkable derivation
(issue 9 #7): the figures must not read as facts nobody can trace."""

from __future__ import annotations

import re
from pathlib import Path

import greenai.evidence.accounting as accounting
from greenai.core.settings import load_settings

README = Path(__file__).resolve().parents[1] / "README.md"
BLOOM = "https://jmlr.org/papers/v24/23-0069.html"


def test_the_defaults_are_the_cited_figures() -> None:
    settings = load_settings(env={})
    assert (settings.embodied_kg_per_gpu, settings.embodied_kg_host) == (150.0, 1200.0)


def test_every_default_cites_a_link_and_says_it_is_an_estimate() -> None:
    doc = accounting.__doc__ or ""
    for default in ("embodied_kg_per_gpu = 150", "embodied_kg_host = 1200"):
        entry = doc[doc.index(default) :].split("\n- ", 1)[0]
        assert "an estimate" in entry
        assert re.search(r"https://\S+", entry), f"{default} cites no link"
    assert BLOOM in doc


def test_the_per_gpu_figure_reproduces_the_cited_hourly_rate() -> None:
    # Luccioni et al. section 4.1: 6 years at 85% use, "0.003 kg of CO2eq for each hour of
    # GPU time", 3.64 t for 1.08 million GPU-hours
    per_hour = 150 / (6 * 8760 * 0.85)
    assert round(per_hour, 3) == 0.003
    assert abs(per_hour * 1.08e6 / 1000 - 3.64) < 0.05


def test_the_readme_links_the_sources() -> None:
    evidence = README.read_text(encoding="utf-8").split("## Evidence", 1)[1]
    assert BLOOM in evidence and "https://arxiv.org/abs/2211.02001" in evidence
