"""Every figure of the training and diagnostics plots (and ``rnnkit activations``), drawn
without pyplot.

The figures are matplotlib ``Figure`` objects saved straight to PNG, so drawing one
leaves the caller's backend and pyplot's open figures alone (a notebook keeps its
own). The script below draws every plot function of both modules in a fresh process
whose backend is set beforehand, and reports what each figure says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rnnkit.diagnostics import plots as diagnostics_plots
from rnnkit.training import plots as training_plots

SCRIPT = textwrap.dedent(
    """
    import json, re, sys
    from pathlib import Path

    import matplotlib
    from matplotlib.figure import Figure

    backend_before = matplotlib.get_backend()
    drawn = []
    savefig = Figure.savefig

    def recording_savefig(fig, path, **kwargs):
        # A figure is saved to a hidden temporary name first (atomic_path): record the
        # file it becomes.
        name = re.sub(r"^\\.(.+)\\.tmp-\\d+(\\.\\w+)$", r"\\1\\2", Path(path).name)
        drawn.append({"file": name, **summary(fig)})
        return savefig(fig, path, **kwargs)

    def summary(fig):
        axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
        return {
            "suptitle": fig._suptitle.get_text() if fig._suptitle else "",
            "axes": [
                {
                    "on": ax.axison,
                    "title": ax.get_title(),
                    "xlabel": ax.get_xlabel(),
                    "ylabel": ax.get_ylabel(),
                    "xticklabels": [t.get_text() for t in ax.get_xticklabels()],
                    "notes": [t.get_text() for t in ax.texts if not len(ax.get_xticks())],
                    "legend": [t.get_text() for t in ax.get_legend().get_texts()]
                    if ax.get_legend() else [],
                    "labelled": sum(not h.get_label().startswith("_")
                                    for h in ax.lines + ax.containers),
                }
                for ax in axes
            ],
        }

    Figure.savefig = recording_savefig

    import numpy as np
    import torch
    import rnnkit
    from rnnkit.diagnostics import gradient_flow, plots as dplots
    from rnnkit.diagnostics.experiment import ExperimentConfig, run_experiment
    from rnnkit.training import plots as tplots

    out = Path(sys.argv[1])
    history = [{"epoch": e, "train_loss": 1 / (e + 1), "val_loss": 1.2 / (e + 1),
                "train_acc": 0.5 + e / 10, "val_acc": 0.4 + e / 10} for e in range(3)]
    tplots.plot_curves(history, out / "curves.png", metric="acc", title="curves")
    tplots.plot_confusion(np.array([[3, 1], [0, 4]]), ["a", "b"], out / "confusion.png",
                          title="confusion")
    tplots.plot_forecast(list(range(5)), np.arange(5.0), {"model": np.arange(5.0) + 0.5},
                         out / "forecast.png", title="forecast", ylabel="price")
    tplots.plot_attention(np.full((2, 3), 1 / 3), ["x", "y", "z"], ["p", "<eos>"],
                          out / "attention.png", title="attention")
    tplots.plot_captions(np.zeros((3, 4, 4)), ["1", "2", "3"], ["1", "2", "4"],
                         out / "captions.png", title="captions")
    tplots.plot_predicted_vs_actual(np.arange(4.0), np.arange(4.0) + 0.5,
                                    out / "predicted_vs_actual.png", title="regression",
                                    label="target")

    torch.manual_seed(0)
    layer = rnnkit.LSTM(2, 3, batch_first=True)
    x = torch.randn(2, 5, 2)
    report = gradient_flow(layer, lambda: layer(x)[0][:, -1].sum())
    dplots.plot_flow_history([(0, report), (10, report)], out / "flow_history.png")
    dplots.plot_gate_saturation({"lstm": {"init": report, "trained": report}},
                                out / "gate_saturation.png")
    tiny = {"steps": 6, "train_steps": 4, "hidden": 5, "batch_size": 4, "test_size": 8,
            "probe_size": 3, "eval_every": 2}
    result = run_experiment(ExperimentConfig(cells=("rnn", "lstm"), **tiny))
    dplots.plot_experiment_gradients(result, out / "experiment_gradients.png")
    dplots.plot_experiment_gates(result, out / "experiment_gates.png")
    dplots.plot_experiment_losses(result, out / "experiment_losses.png")

    from rnnkit.cli.activations import plot_activations
    plot_activations(out / "activations.png")

    print(json.dumps({
        "backend_before": backend_before,
        "backend_after": matplotlib.get_backend(),
        "pyplot_imported": "matplotlib.pyplot" in sys.modules,
        "drawn": drawn,
    }))
    """
)

PLOT_FUNCTIONS = {
    "training": ["plot_attention", "plot_captions", "plot_confusion", "plot_curves",
                 "plot_forecast", "plot_predicted_vs_actual"],
    "diagnostics": ["plot_experiment_gates", "plot_experiment_gradients",
                    "plot_experiment_losses", "plot_flow_history", "plot_gate_saturation"],
}  # fmt: skip


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("plots")
    # A backend other than Agg, chosen before rnnkit is imported: it must survive.
    env = {**os.environ, "MPLBACKEND": "svg"}
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    result["out"] = out
    return result


def test_the_script_draws_every_plot_function_of_both_modules() -> None:
    def public_plots(module: object) -> list[str]:
        # plot_relative_norms draws onto a caller's Axes and writes no file.
        names = (n for n in vars(module) if n.startswith("plot_"))
        return sorted(n for n in names if n != "plot_relative_norms")

    assert public_plots(training_plots) == PLOT_FUNCTIONS["training"]
    assert public_plots(diagnostics_plots) == PLOT_FUNCTIONS["diagnostics"]
    for name in PLOT_FUNCTIONS["training"] + PLOT_FUNCTIONS["diagnostics"]:
        assert name in SCRIPT


def test_drawing_leaves_the_backend_and_pyplot_alone(drawn: dict) -> None:
    assert drawn["backend_before"] == "svg"
    assert drawn["backend_after"] == "svg"
    assert not drawn["pyplot_imported"]


def test_every_figure_is_written(drawn: dict) -> None:
    files = sorted(f["file"] for f in drawn["drawn"])
    assert files == sorted(
        ["curves.png", "confusion.png", "forecast.png", "attention.png", "captions.png",
         "predicted_vs_actual.png", "flow_history.png", "gate_saturation.png",
         "experiment_gradients.png", "experiment_gates.png", "experiment_losses.png",
         "activations.png"]
    )  # fmt: skip
    for name in files:
        assert (Path(drawn["out"]) / name).stat().st_size > 0


def test_every_figure_has_titles_labelled_axes_and_legends(drawn: dict) -> None:
    for figure in drawn["drawn"]:
        for ax in figure["axes"]:
            assert figure["suptitle"] or ax["title"], figure["file"]
            if not ax["on"] or ax["notes"]:  # an image grid (captions), a note ("no gates")
                continue
            assert ax["xlabel"] or any(ax["xticklabels"]), (figure["file"], ax)
            if ax["labelled"] > 1:
                assert len(ax["legend"]) >= 2, (figure["file"], ax)
        labelled = [ax for ax in figure["axes"] if ax["on"]]
        assert not labelled or any(ax["ylabel"] for ax in labelled), figure["file"]


def test_the_figures_say_what_they_said_before(drawn: dict) -> None:
    by_file = {f["file"]: f for f in drawn["drawn"]}
    curves = by_file["curves.png"]
    assert curves["suptitle"] == "curves"
    assert [ax["title"] for ax in curves["axes"]] == ["loss per epoch", "accuracy per epoch"]
    assert [ax["ylabel"] for ax in curves["axes"]] == ["loss", "accuracy"]
    assert all(ax["xlabel"] == "epoch" and ax["legend"] == ["train", "val"]
               for ax in curves["axes"])  # fmt: skip
    (confusion,) = by_file["confusion.png"]["axes"]
    assert (confusion["xlabel"], confusion["ylabel"]) == ("predicted class", "true class")
    (forecast,) = by_file["forecast.png"]["axes"]
    assert forecast["legend"] == ["actual", "model"] and forecast["ylabel"] == "price"
    (regression,) = by_file["predicted_vs_actual.png"]["axes"]
    assert (regression["xlabel"], regression["ylabel"]) == ("actual target", "predicted target")
    assert regression["legend"] == ["y = x"]
    (attention,) = by_file["attention.png"]["axes"]
    assert (attention["xlabel"], attention["ylabel"]) == ("source position", "output step")
    assert [ax["title"] for ax in by_file["captions.png"]["axes"]] == [
        "1\n(true: 1)", "2\n(true: 2)", "3\n(true: 4)"
    ]  # fmt: skip
    losses = by_file["experiment_losses.png"]["axes"][0]
    assert "memoryless baseline" in losses["legend"] and losses["xlabel"] == "optimiser step"
    gradients = by_file["experiment_gradients.png"]["axes"]
    assert gradients[0]["ylabel"].startswith("‖∂L/∂h_t‖ / ‖∂L/∂h_T‖")
    assert gradients[0]["legend"] == ["rnn: h", "lstm: h", "lstm: c"]
    (history,) = by_file["flow_history.png"]["axes"]
    assert history["legend"] == ["step 0", "step 10"]
