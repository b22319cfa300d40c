"""`sectl eval --ratings`: a listening test's ratings files into MOS (or MUSHRA scores) with intervals."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from sectl.cli.common import EXIT_FAILURE, err, out, print_json, warn
from sectl.errors import UsageError
from sectl.fileutil import check_outputs, inputs, write_new


def run(files: list[Path], test: Path | None, as_json: bool, csv_path: Path | None, plot: Path | None,
        overwrite: bool, allow_partial: bool) -> None:  # fmt: skip
    """Validate, screen, analyse, print; exit 1 when a file was refused (the others are analysed)."""
    if not files:
        raise UsageError("--ratings: give the ratings files (ratings/*.json) as arguments")
    if test is None:
        raise UsageError("--ratings needs --test test/test.json (the key sectl report --test wrote beside the test's site/ folder)")
    check_outputs({"--csv file": csv_path, "--plot file": plot}, [*inputs("ratings", files), *inputs("--test", test)], overwrite)
    from sectl.report.analysis import analyse, plot as plot_result, to_csv
    from sectl.report.ratings import load_ratings, load_test, screen

    key = load_test(test)
    raters, refused = load_ratings(files, key)
    for line in refused:
        err.print(f"[bold red]refused:[/] {escape(line)}", highlight=False, soft_wrap=True)
    screen(raters, key, allow_partial)
    for rater in raters:
        if not rater.kept:
            warn(f"{rater.file}: rater {rater.rater!r} dropped ({rater.reason})")
    result = analyse(raters, key)
    for line in result["warnings"]:
        warn(line)
    result["refused"] = refused
    if csv_path is not None:
        write_new(csv_path, to_csv(raters, key).encode(), overwrite)
    if plot is not None:
        plot_result(result, str(plot), overwrite)
    if as_json:
        print_json(result)
    else:
        for name, scale in result["scales"].items():
            out.print(scale_table(name, scale, result))
        out.print(rater_table(result))
    if refused:
        raise typer.Exit(EXIT_FAILURE)


def _ci(ci: list[float] | None) -> str:
    return f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "-"


def scale_table(name: str, scale: dict, result: dict) -> Table:
    kept = sum(r["kept"] for r in result["raters"])
    table = Table(title=f"{escape(name)}: mean [95 % CI, two-way t-interval over {kept} rater(s) x {result['utterances']} utterance(s)]")
    for column in ("condition", "mean", "95 % CI", "ratings"):
        table.add_column(column, justify="left" if column == "condition" else "right")
    for row in scale["conditions"]:
        table.add_row(escape(row["name"]), "-" if row["mean"] is None else f"{row['mean']:.2f}", _ci(row["ci95"]), str(row["ratings"]))
    table.add_section()
    for pair in scale["pairwise"]:
        mark = "*" if pair["significant"] else ""
        table.add_row(escape(f"{pair['a']} - {pair['b']}{mark}"), f"{pair['difference']:+.2f}", _ci(pair["ci95"]), f"p={pair['p']:.3f}")
    for level, found in scale["correlation"].items():
        for metric, values in found.items():
            text = ", ".join(f"{k} {v['r']:+.2f}" for k, v in values.items() if isinstance(v, dict)) or "too few points"
            table.caption = (table.caption + "\n" if table.caption else "* significant at 95 %. Correlation with metrics:\n") + \
                escape(f"{level.replace('_', ' ')} {metric} (n={values['n']}): {text}")  # fmt: skip
    return table


def rater_table(result: dict) -> Table:
    table = Table(title="raters")
    for column in ("rater", "file", "trials", "kept", "reason"):
        table.add_column(column)
    for r in result["raters"]:
        table.add_row(escape(r["rater"]), escape(r["file"]), str(r["trials"]), "yes" if r["kept"] else "no", escape(r["reason"] or ""))
    return table
