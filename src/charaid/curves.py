"""Training curves a person can read: Chainer's `PlotReport` with a title, a y-axis label, whole
epochs on the x axis and plain names in the legend (instead of `main/loss` keys)."""

from __future__ import annotations

from chainer.training import extensions


def plot_report(
    names: dict[str, str], filename: str, title: str, ylabel: str
) -> extensions.PlotReport:
    """A per-epoch PlotReport of the reported keys of `names` ({key: legend name})."""
    from matplotlib.ticker import MaxNLocator

    def finish(figure, axes, summary) -> None:  # called by PlotReport before its legend
        axes.set_title(title)
        axes.set_ylabel(ylabel)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
        for line in axes.get_lines():
            line.set_label(names.get(line.get_label(), line.get_label()))

    return extensions.PlotReport(
        list(names), "epoch", postprocess=finish, filename=filename, marker="o"
    )
