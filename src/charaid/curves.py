"""Training curves a person can read: per-epoch plots with a title, a y-axis label, whole epochs on
the x axis and plain names in the legend (instead of `main/loss` keys).

Drawn from `LogReport`'s log at each epoch's end rather than by Chainer's `PlotReport`, which
keeps its own copy of the values: after a run resumed from a snapshot it plots a stray point
at the resumed epoch, so a resumed run's picture would differ from an uninterrupted one's."""

from __future__ import annotations

import time
from pathlib import Path

from chainer import training

from charaid.atomic import atomic_path


def draw_curves(
    log: list[dict], names: dict[str, str], path: Path, title: str, ylabel: str, note: str = ""
) -> None:
    """A PNG at `path` of the `names` keys ({log key: legend name}) against the epoch; `note`
    is written across the axes (a run that trained nothing still gets a picture that says so)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots()
    for key, name in names.items():
        points = [(e["epoch"], e[key]) for e in log if key in e]
        if points:
            xs, ys = zip(*points, strict=True)
            axes.plot(xs, ys, marker="o", label=name)
        else:  # an empty line keeps the legend: the reader sees what would be drawn
            axes.plot([], [], marker="o", label=name)
    if note:
        axes.text(0.5, 0.5, note, ha="center", va="center", transform=axes.transAxes)
    axes.set_title(title)
    axes.set_xlabel("epoch")
    axes.set_ylabel(ylabel)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
    axes.grid(True)
    legend = axes.legend(bbox_to_anchor=(1.05, 1), loc=2, borderaxespad=0.0)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", bbox_extra_artists=(legend,), bbox_inches="tight")
    plt.close(figure)


class EpochPlot(training.Extension):
    """`draw_curves` of LogReport's log at epochs' ends, into the trainer's folder: at most every
    `every` seconds while training (a picture costs ~0.3 s, 3% of a long run drawn every
    epoch), and always at the last epoch, so the final picture is the whole run's."""

    trigger = (1, "epoch")
    priority = training.PRIORITY_READER  # after LogReport has written this epoch's entry

    def __init__(
        self, names: dict[str, str], filename: str, title: str, ylabel: str, every: float = 30.0
    ) -> None:
        self.names, self.filename, self.title, self.ylabel = names, filename, title, ylabel
        self.every, self.drawn_at = every, float("-inf")

    def __call__(self, trainer: training.Trainer) -> None:
        stop = trainer.stop_trigger
        last = getattr(stop, "unit", None) == "epoch" and trainer.updater.epoch >= stop.period
        if not last and time.monotonic() - self.drawn_at < self.every:
            return
        log = trainer.get_extension("LogReport").log
        path = Path(trainer.out) / self.filename
        draw_curves(log, self.names, path, self.title, self.ylabel)
        self.drawn_at = time.monotonic()
