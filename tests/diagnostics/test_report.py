"""The report: JSON round trip, strict JSON, markdown, ratios in processing order."""

from __future__ import annotations

import json

import pytest
import torch

import rnnkit
from rnnkit.diagnostics import GateStats, GradientFlowReport, LayerFlow, gradient_flow


def _report() -> GradientFlowReport:
    layer = rnnkit.LSTM(2, 3, bidirectional=True, batch_first=True)
    x, lengths = torch.randn(2, 4, 2), torch.tensor([4, 2])
    return gradient_flow(layer, lambda: layer(x, lengths=lengths)[0].pow(2).sum())


def test_json_round_trip_is_exact() -> None:
    report = _report()
    again = GradientFlowReport.from_json(report.to_json())
    assert again == report
    assert again.layers[0].per_sequence["c"][3][1] is None  # a padded step stays missing


def test_summary_json_drops_per_sequence_norms_only() -> None:
    report = _report()
    summary = GradientFlowReport.from_json(report.to_json(per_sequence=False))
    assert summary.layers[0].per_sequence == {}
    assert summary.layers[0].grad_norms == report.layers[0].grad_norms
    assert summary.layers[0].gates == report.layers[0].gates


def test_json_is_strict_even_for_a_diverged_loss() -> None:
    flow = LayerFlow("rnn", 0, 0, "forward", "rnn", ("h",), {"h": [float("inf"), 1.0]})
    text = GradientFlowReport(float("nan"), [flow], {"w": float("nan")}).to_json()
    data = json.loads(text)  # no NaN/Infinity tokens, which strict parsers reject
    assert (data["loss"], data["parameters"]["w"], data["layers"][0]["grad_norms"]["h"][0]) == (
        None,
        None,
        None,
    )


def test_ratio_follows_the_direction_of_processing() -> None:
    forward = LayerFlow("m", 0, 0, "forward", "gru", ("h",), {"h": [1e-6, 1e-3, 1.0]})
    backward = LayerFlow("m", 0, 0, "backward", "gru", ("h",), {"h": [1.0, 1e-3, 1e-6]})
    assert forward.ratio() == pytest.approx(1e-6)
    assert backward.ratio() == pytest.approx(1e-6)  # a backward scan ends at t = 1
    assert forward.first_last() == (1e-6, 1.0)
    with_gap = LayerFlow("m", 0, 0, "forward", "gru", ("h",), {"h": [2.0, 1.0, None]})
    assert with_gap.ratio() == 2.0  # steps where no sequence is real are skipped
    dead = LayerFlow("m", 0, 0, "forward", "gru", ("h",), {"h": [0.0, 0.0]})
    assert dead.ratio() is None
    with pytest.raises(KeyError, match=r"expected a state field in \('h',\), got 'c'"):
        forward.ratio("c")


def test_markdown_has_a_row_per_layer_direction_and_field() -> None:
    text = _report().to_markdown()
    assert "| layer | cell | T | state |" in text
    assert "| model[0] forward | lstm | 4 | h |" in text
    assert "| model[0] backward | lstm | 4 | h |" in text
    assert text.count("|  |  |  | c |") == 2
    assert "f 0." in text and "(sat " in text
    assert "| weight_hh_l0_reverse |" in text


def test_gate_stats_saturated_sums_both_sides() -> None:
    assert GateStats(0.5, 0.25, 0.125).saturated == 0.375
    assert GateStats(0.1).saturated is None


def test_layer_lookup_names_what_was_recorded() -> None:
    with pytest.raises(
        KeyError, match=r"recorded: \[\('', 0, 'backward'\), \('', 0, 'forward'\)\]"
    ):
        _report().layer("encoder")
