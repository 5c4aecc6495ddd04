"""Entry point: a click group whose subcommands are imported only when run.

Every error a user can cause ends as one line on stderr and a non-zero exit:
the KeelError's own exit code, 2 for bad usage, never a traceback
(``KEEL_DEBUG=1`` shows one).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from keel import __version__
from keel.errors import KeelError

__all__ = ["cli", "main"]

# name -> "module:attribute", loaded on first use so `keel --help` stays fast.
COMMANDS = {
    "init": ("keel.cli.workspace:init_cmd", "Create a workspace (.keel/) here; idempotent."),
    "data": ("keel.cli.data:data", "Version datasets: add, list, show, log, diff, get, rm."),
    "verify": (
        "keel.cli.workspace:verify_cmd",
        "Check every object and record; exit 1 if any is wrong.",
    ),
    "gc": ("keel.cli.workspace:gc_cmd", "Remove objects no record needs."),
    "features": (
        "keel.cli.features:features",
        "Feature views as versioned code: apply, list, show, diff, build, training-set.",
    ),
    "runs": ("keel.cli.runs:runs", "Experiment runs: list, show, compare, metrics."),
    "models": ("keel.cli.models:models", "Model registry: list, show, alias, promote, rollback, archive."),
    "lineage": (
        "keel.cli.models:lineage_cmd",
        "Where a model or dataset version came from and what it fed.",
    ),
    "evaluate": (
        "keel.cli.evaluate:evaluate_cmd",
        "Evaluate a model on data: metrics, value, threshold, slices.",
    ),
    "gate": (
        "keel.cli.evaluate:gate_cmd",
        "Should a challenger replace the champion? Exit 0 promote, 1 reject.",
    ),
    "drift": (
        "keel.cli.drift:drift_cmd",
        "Has a table drifted from a reference? Exit 0 no, 1 drift, 2 bad input.",
    ),
    "monitor": (
        "keel.cli.monitor:monitor_cmd",
        "Has a served model's traffic drifted? Once, or --every 10m with alerts.",
    ),
    "reproduce": (
        "keel.cli.runs:reproduce_cmd",
        "Re-run a run from its record and compare; exit 1 if it differs.",
    ),
    "serve": (
        "keel.cli.serve:serve_cmd",
        "Serve a model alias over HTTP: predict, feedback, OIP v2, metrics.",
    ),
    "deploy": (
        "keel.cli.serve:deploy",
        "Shadow, canary or A/B a challenger; status, promote, stop, watch.",
    ),
    "logs": ("keel.cli.serve:logs_cmd", "Logged predictions (and outcomes) of a served model."),
    "run": (
        "keel.cli.pipeline:run_cmd",
        "Run a pipeline (FILE:NAME); unchanged steps are reused from the step cache.",
    ),
    "pipelines": ("keel.cli.pipeline:pipelines", "Pipelines that ran here: list, show, runs."),
    "watch": (
        "keel.cli.watch:watch_cmd",
        "The loop: drift starts retraining, a gate decides, a canary rolls out; status.",
    ),
    "quickstart": (
        "keel.cli.quickstart:quickstart",
        "Walk through the lifecycle in this folder, narrated.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, _, attr = COMMANDS[name][0].partition(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="keel")
def cli() -> None:
    """keel: version data, track experiments, evaluate on outcomes, serve, monitor, retrain.

    Start with `keel init`, then `keel data add PATH --name NAME`.
    """


def fail(message: str, code: int) -> None:
    sys.stderr.write(f"keel: error: {message}\n")
    sys.exit(code)


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="keel", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        fail("aborted", 130)
    except click.ClickException as exc:
        # Usage errors: one line, exit 2, like every other bad input.
        fail(exc.format_message().replace("\n", " "), 2 if exc.exit_code == 2 else exc.exit_code)
    except KeelError as exc:
        if os.environ.get("KEEL_DEBUG"):
            raise
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("KEEL_DEBUG"):
            raise
        # 3, not 1: for `keel gate` 1 means "reject", and a crash must never read as a verdict
        fail(f"internal error: {type(exc).__name__}: {exc} (KEEL_DEBUG=1 shows the traceback)", 3)


if __name__ == "__main__":  # pragma: no cover
    main()
