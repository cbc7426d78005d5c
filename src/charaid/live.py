"""Per-epoch metrics through DVCLive, so `dvc exp show` / DVC Studio see a run while it trains.

`LiveLog` is a Chainer extension: at the end of each epoch it logs the newest `LogReport` entry
(`train/loss`, `train/accuracy`, `test/loss`, `test/accuracy`) and calls `next_step`, which
rewrites `<dir>/metrics.json` (the summary, with `step` = epochs done). It writes the summary only
(`plot=False`): the per-epoch curves are `metrics/train_log.csv`, which the project's plots
already read, so DVCLive does not keep a second copy of them. No timestamps are logged, so the
summary is the same for the same run. DVCLive writes no `dvc.yaml` of its own and saves no
experiment: the `train` stage in the project's dvc.yaml declares the summary (cache: false), and
`dvc exp run` is what makes experiments.
"""

from __future__ import annotations

import logging
from pathlib import Path

from chainer import training

from charaid.errors import CharaidError

# LogReport key -> DVCLive metric name
KEYS = {
    "main/loss": "train/loss",
    "main/accuracy": "train/accuracy",
    "validation/main/loss": "test/loss",
    "validation/main/accuracy": "test/accuracy",
}


class LiveLog(training.Extension):
    """Log each epoch's LogReport entry to a DVCLive summary in `directory`."""

    trigger = (1, "epoch")
    priority = training.PRIORITY_READER

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._live = None

    def initialize(self, trainer: training.Trainer) -> None:
        # Opened before the first epoch, so a repository DVCLive refuses stops the run at once.
        if self._live is None:
            self._live = self._open()

    def _open(self):
        from dvclive import Live
        from scmrepo.exceptions import SCMError

        # DVCLive announces the experiment name at INFO on every start: keep stage output quiet.
        logging.getLogger("dvclive").setLevel(logging.WARNING)
        try:
            return Live(
                dir=str(self.directory),
                dvcyaml=False,
                save_dvc_exp=False,
                report=None,
                resume=False,
            )
        except SCMError as exc:  # e.g. "Empty git repo": DVCLive reads the current commit
            raise CharaidError(
                f"DVCLive cannot use this git repository ({exc}); "
                "commit once first: git add -A && git commit -m 'initial commit'"
            ) from None

    def __call__(self, trainer: training.Trainer) -> None:
        entry = trainer.get_extension("LogReport").log[-1]
        if self._live is None:
            self._live = self._open()
        live = self._live
        # A run resumed from a snapshot starts at a later epoch: the step follows the epoch.
        live.step = int(entry["epoch"]) - 1
        live.log_metric("epoch", int(entry["epoch"]), plot=False)
        for key, name in KEYS.items():
            if key in entry:
                live.log_metric(name, round(float(entry[key]), 5), plot=False)
        live.next_step()

    def finalize(self) -> None:
        if self._live is not None:
            self._live.end()
            self._live = None
