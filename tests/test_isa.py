"""The INT8 settings follow the instruction sets a CPU reports, read from cpuinfo text (faked here)."""

from __future__ import annotations

import pytest

from facecompress.compress.isa import int8_choice, read_isa

ZEN3 = "processor\t: 0\nflags\t\t: fpu sse sse2 avx f16c fma avx2 bmi2 vaes\nmodel name\t: AMD EPYC\n"
ZEN4 = ("processor\t: 0\nflags\t\t: fpu avx avx2 avx512f avx512bw avx512_vnni avx512_bf16\n"
        "processor\t: 1\nflags\t\t: fpu avx avx2 avx512f avx512bw avx512_vnni avx512_bf16\n")
SAPPHIRE = "flags\t\t: avx2 avx512f avx_vnni amx_tile amx_int8 amx_bf16\n"


@pytest.mark.parametrize("text, vnni, bf16, reduce_range", [(ZEN3, False, False, True), (ZEN4, True, True, False),
                                                           (SAPPHIRE, True, True, False)])
def test_vnni_decides_reduce_range(text, vnni, bf16, reduce_range):
    isa = read_isa(text)
    assert (isa.vnni, isa.bf16, isa.avx2) == (vnni, bf16, True)
    choice = int8_choice(isa)
    assert choice.reduce_range is reduce_range
    assert choice.basis.startswith("measured") is (not vnni)  # only the AVX2 choice was measured here


def test_the_record_names_what_was_found():
    assert read_isa(ZEN3).describe() == "avx2"
    assert read_isa(SAPPHIRE).describe() == "avx2 avx512 vnni amx bf16"
    assert read_isa("").describe() == "no avx2"


def test_the_chosen_settings_reach_the_recipe(monkeypatch):
    """inference.py's settings take reduce_range and the ISA from the CPU unless --reduce-range says otherwise."""
    import inference
    from facecompress.compress import isa

    monkeypatch.setattr(inference, "read_isa", lambda: isa.read_isa(ZEN4))
    chosen = inference.settings_from(inference.parse_args([]))
    assert chosen.reduce_range is False and chosen.isa == "avx2 avx512 vnni bf16"
    forced = inference.settings_from(inference.parse_args(["--reduce-range", "on"]))
    assert forced.reduce_range is True and forced.int8_basis == "--reduce-range on"
    monkeypatch.setattr(inference, "read_isa", lambda: isa.read_isa(ZEN3))
    assert inference.settings_from(inference.parse_args([])).reduce_range is True


def test_a_study_searches_more_than_the_first_run():
    import inference

    first, study = (inference.settings_from(inference.parse_args(a)) for a in ([], ["--study"]))
    assert first.search_scopes == ("all",) and study.search_scopes == ("all", "conv")
    assert len(study.search_methods) == 3 > len(first.search_methods) and study.search_images > first.search_images
