"""The `sectl` Typer application: registers one thin command per verb."""

from __future__ import annotations

import os
import sys

import typer

from sectl import __version__
from sectl.cli import align as align_cli
from sectl.cli import cache as cache_cli
from sectl.cli import encode as encode_cli
from sectl.cli import enhance as enhance_cli
from sectl.cli import eval as eval_cli
from sectl.cli import export as export_cli
from sectl.cli import iterate as iterate_cli
from sectl.cli import report as report_cli
from sectl.cli import train as train_cli
from sectl.cli.common import EXIT_USAGE, reflow
from sectl.fileutil import complete_text

app = typer.Typer(
    name="sectl",
    help="Train, run and evaluate neural speech-enhancement and speech-representation models.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

app.command("train", help=reflow(train_cli.HELP))(train_cli.train_command)
app.command("enhance", help=reflow(enhance_cli.HELP))(enhance_cli.enhance_command)
app.command("iterate", help=reflow(iterate_cli.HELP))(iterate_cli.iterate_command)
app.command("encode", help=reflow(encode_cli.HELP))(encode_cli.encode_command)

app.command("eval", help=reflow(eval_cli.HELP))(eval_cli.eval_command)
app.command("report", help=reflow(report_cli.HELP))(report_cli.report_command)
app.command("align", help=reflow(align_cli.HELP))(align_cli.align_command)
app.command("export", help=reflow(export_cli.HELP))(export_cli.export_command)
app.command("cache", help=reflow(cache_cli.HELP))(cache_cli.cache_command)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"sectl {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True, help="Show the version."),
) -> None:
    """Train, run and evaluate neural speech-enhancement and speech-representation models."""


USAGE_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
"""Click's (typer's) usage error: a missing or unknown option, a value of the wrong type."""


def run_app(args: list[str] | None = None) -> int:
    """The app with its usage errors as one line on stderr (exit 2), like every other error: Click would
    print a usage block and a framed message."""
    try:
        code = typer.main.get_command(app).main(args=args, prog_name="sectl", standalone_mode=False)
    except USAGE_ERROR as exc:
        if not exc.format_message():  # `sectl` alone: the parser has shown the help already (exit 2, as Click)
            return exc.exit_code
        where = exc.ctx.command_path if exc.ctx is not None else "sectl"
        print(f"error: {exc.format_message()} (see '{where} --help')", file=sys.stderr)
        return EXIT_USAGE
    except typer.Abort:  # Ctrl-C while Click itself was prompting or parsing
        print("error: interrupted", file=sys.stderr)
        return 130
    return code if isinstance(code, int) else 0


def main() -> None:
    sys.stdout = complete_text(sys.stdout)
    try:
        code = run_app()
    except SystemExit as done:
        code = done.code
    try:  # tables and lines still buffered: a full disk or closed pipe is one line, not a traceback at exit
        sys.stdout.flush()
    except OSError as exc:
        sys.stdout = open(os.devnull, "w")  # nothing more to say there; keep Python's own exit flush quiet
        if not code:  # a failing command has said its one line (often this very error) already
            print(f"error: cannot write to standard output ({exc.strerror or type(exc).__name__})", file=sys.stderr)
        code = code or EXIT_USAGE  # as every other unwritable stdout
    sys.exit(code)
