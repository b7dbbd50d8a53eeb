"""jaxrnn: train ensembles of recurrent neural networks for computational neuroscience as one compiled program."""

from jaxrnn._platform import configure
from jaxrnn._version import __version__ as __version__
from jaxrnn.cells.network import NetConfig, effective_params, forward, init_params
from jaxrnn.runs import open_run, train_run
from jaxrnn.runs.store import Run
from jaxrnn.tasks import TASKS, Task, Trial, make_task
from jaxrnn.training.evaluate import Evaluation, evaluate, wilson_interval
from jaxrnn.training.train import Ensemble, Hparams, TrainConfig, fit, make_train, member, member_keys, train_member

__all__ = [
    "TASKS",
    "Ensemble",
    "Evaluation",
    "Hparams",
    "NetConfig",
    "Run",
    "Task",
    "TrainConfig",
    "Trial",
    "configure",
    "effective_params",
    "evaluate",
    "fit",
    "forward",
    "init_params",
    "make_task",
    "make_train",
    "member",
    "member_keys",
    "open_run",
    "train_member",
    "train_run",
    "wilson_interval",
]
