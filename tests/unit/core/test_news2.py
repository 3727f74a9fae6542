"""NEWS2 at every band edge of the RCP 2017 chart, both SpO2 scales, and missing parameters."""

import json

import pytest

from vigil.cli import main
from vigil.core.news2 import (
    Observations,
    band_for,
    score_consciousness,
    score_news2,
    score_pulse,
    score_respiration_rate,
    score_spo2_scale1,
    score_spo2_scale2,
    score_systolic_bp,
    score_temperature,
)


@pytest.mark.parametrize("rr, points", [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (5, 3), (40, 3)])
def test_respiration_rate_edges(rr, points):
    assert score_respiration_rate(rr) == points


@pytest.mark.parametrize("spo2, points", [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0), (80, 3)])
def test_spo2_scale1_edges(spo2, points):
    assert score_spo2_scale1(spo2) == points


@pytest.mark.parametrize(
    "spo2, on_oxygen, points",
    [
        (83, False, 3), (84, False, 2), (85, False, 2), (86, False, 1), (87, False, 1), (88, False, 0), (92, False, 0),
        (93, False, 0), (97, False, 0), (100, False, 0),
        (88, True, 0), (92, True, 0), (93, True, 1), (94, True, 1), (95, True, 2), (96, True, 2), (97, True, 3), (100, True, 3),
        (83, True, 3),
    ],
)
def test_spo2_scale2_edges(spo2, on_oxygen, points):
    assert score_spo2_scale2(spo2, on_oxygen) == points


@pytest.mark.parametrize("sbp, points", [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)])
def test_systolic_edges(sbp, points):
    assert score_systolic_bp(sbp) == points


@pytest.mark.parametrize("hr, points", [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2), (131, 3)])
def test_pulse_edges(hr, points):
    assert score_pulse(hr) == points


@pytest.mark.parametrize("temp, points", [(35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1), (39.1, 2)])
def test_temperature_edges(temp, points):
    assert score_temperature(temp) == points


def test_consciousness():
    assert score_consciousness("A") == 0
    assert all(score_consciousness(level) == 3 for level in "CVPU")
    with pytest.raises(ValueError):
        score_consciousness("X")


def test_wearable_values_round_like_a_chart():
    assert score_pulse(90.4) == 0 and score_pulse(90.5) == 1
    assert score_temperature(38.04) == 0 and score_temperature(38.05) == 1


@pytest.mark.parametrize(
    "score, red, band",
    [(0, False, "low"), (4, False, "low"), (3, True, "low-medium"), (4, True, "low-medium"), (5, False, "medium"),
     (6, True, "medium"), (7, False, "high"), (20, True, "high")],
)
def test_bands(score, red, band):
    assert band_for(score, red) == band


def test_full_set_and_partial_flag():
    full = score_news2(Observations(rr=15, spo2=97, on_oxygen=False, sbp=120, hr=70, acvpu="A", temp=37.0))
    assert full.score == 0 and full.band == "low" and not full.partial
    partial = score_news2(Observations(rr=26, hr=70))
    assert partial.partial
    assert set(partial.missing) == {"spo2", "air_or_oxygen", "sbp", "consciousness", "temp"}
    assert partial.score == 3 and partial.band == "low-medium"
    oxygen = score_news2(Observations(rr=15, spo2=97, on_oxygen=True, sbp=120, hr=70, acvpu="A", temp=37.0, spo2_scale=2))
    assert oxygen.parameters["spo2"] == 3 and oxygen.parameters["air_or_oxygen"] == 2 and oxygen.score == 5


def test_cli_prints_score_band_parameters(capsys):
    code = main(["news2", "--rr", "22", "--spo2", "95", "--air", "--sbp", "105", "--hr", "115",
                 "--consciousness", "A", "--temp", "38.5"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["score"] == 2 + 1 + 0 + 1 + 2 + 0 + 1
    assert result["band"] == "high"
    assert result["parameters"] == {"rr": 2, "spo2": 1, "air_or_oxygen": 0, "sbp": 1, "hr": 2, "consciousness": 0, "temp": 1}


def test_cli_scale2_on_oxygen(capsys):
    assert main(["news2", "--spo2", "96", "--scale", "2", "--oxygen"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["parameters"]["spo2"] == 2 and result["parameters"]["air_or_oxygen"] == 2
