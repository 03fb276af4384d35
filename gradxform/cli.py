"""The `gradxform` command line: `gradxform race` trains optimizers side by side and reports them.

Bad arguments get one line on stderr and exit code 2 (never a traceback).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence

USAGE_ERROR = 2


class UsageError(Exception):
    """A bad command-line argument: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors, in one line
        raise UsageError(message)


def _csv(choices: Sequence[str], what: str):
    def parse(text: str) -> list[str]:
        by_lower = {c.lower(): c for c in choices}  # case-insensitive: "Adam", "compat.torch.adam" both work
        names = [by_lower.get(t.strip().lower(), t.strip()) for t in text.split(",") if t.strip()]
        if not names:
            raise argparse.ArgumentTypeError(f"empty list of {what}s; choose from {', '.join(choices)}")
        if [n.lower() for n in names] == ["all"]:
            return list(choices)
        bad = [n for n in names if n not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {what} {bad[0]!r}; choose from {', '.join(choices)} or 'all'")
        return list(dict.fromkeys(names))

    return parse


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be a positive integer (the number of updates)")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive finite number")
    return value


def build_parser() -> argparse.ArgumentParser:
    from gradxform.race.problems import DEFAULT_FIELD, PROBLEM_NAMES, raceable

    parser = _Parser(prog="gradxform", description="gradxform's command line.")
    sub = parser.add_subparsers(dest="command", metavar="command", parser_class=_Parser)
    race = sub.add_parser(
        "race",
        help="train optimizers side by side on 2-D surfaces and a digits MLP; print a table, write a PNG",
        description="Trains the chosen optimizers on the chosen problems and reports final loss, held-out "
        "accuracy, steps to a target loss and time; writes race.png and results.json to --out.",
    )
    race.add_argument(
        "--optimizers",
        type=_csv(tuple(raceable()), "optimizer"),
        default=list(DEFAULT_FIELD),
        help=f"comma-separated, from: {', '.join(raceable())}, or 'all' (default: {', '.join(DEFAULT_FIELD)})",
    )
    race.add_argument(
        "--problem",
        "--problems",
        dest="problems",
        type=_csv(PROBLEM_NAMES, "problem"),
        default=list(PROBLEM_NAMES),
        help=f"comma-separated, from: {', '.join(PROBLEM_NAMES)} (default: all)",
    )
    race.add_argument("--steps", type=_positive_int, default=500, help="updates per run (default: 500)")
    race.add_argument("--seed", type=_int, default=0, help="seeds the digits split and weights (default: 0)")
    race.add_argument(
        "--lr", type=_positive_float, default=None, help="one learning rate for all (default: per problem)"
    )
    race.add_argument("--out", default="race-out", help="folder for race.png and results.json (default: race-out)")
    race.add_argument("--no-plot", action="store_true", help="skip the PNG")
    return parser


def _writable_folder(path: str) -> str:
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise UsageError(f"--out {path!r} is not a writable folder ({err.strerror or err})") from None
    return path


class _Progress:
    """A one-line progress bar on stderr (a line per run when stderr is not a terminal)."""

    def __init__(self, total: int, width: int = 30) -> None:
        self.total, self.width, self.done, self.start = total, width, 0, time.perf_counter()
        self.tty = sys.stderr.isatty()

    def __call__(self, result) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.start
        label = f"{result.problem}/{result.optimizer}"
        if self.tty:
            filled = self.width * self.done // self.total
            bar = "#" * filled + "-" * (self.width - filled)
            end = "\n" if self.done == self.total else ""
            sys.stderr.write(f"\r[{bar}] {self.done}/{self.total} {elapsed:5.1f}s {label:<22}{end}")
        else:
            sys.stderr.write(f"[{self.done:>3}/{self.total}] {elapsed:5.1f}s {label}\n")
        sys.stderr.flush()


def _missing_extras(need_plot: bool, problems: Sequence[str]) -> list[str]:
    wanted = (["matplotlib"] if need_plot else []) + (["sklearn"] if "digits" in problems else [])
    return [m for m in wanted if importlib.util.find_spec(m) is None]


def run_race(args: argparse.Namespace) -> int:
    from gradxform.race.engine import race
    from gradxform.race.problems import build, make_problem
    from gradxform.race.report import figure, table

    out = _writable_folder(args.out)
    missing = _missing_extras(not args.no_plot, args.problems)
    if missing:
        raise UsageError(f"missing {', '.join(missing)}: install the race extra (pip install 'gradxform[race]')")
    if args.lr is not None:
        for name in args.optimizers:
            try:
                build(name, args.lr)
            except (ValueError, TypeError) as err:
                raise UsageError(f"--lr {args.lr}: {err}") from None

    start = time.perf_counter()
    problems = [make_problem(name, args.seed) for name in args.problems]
    progress = _Progress(len(problems) * len(args.optimizers))
    results = race(problems, args.optimizers, args.steps, args.seed, args.lr, on_done=progress)
    race_s = time.perf_counter() - start

    print(table(results))
    summary = [
        dict(
            problem=r.problem,
            optimizer=r.optimizer,
            learning_rate=r.learning_rate,
            final_loss=r.final_loss,
            held_out_accuracy=r.final_accuracy,
            target_loss=r.target,
            steps_to_target=r.steps_to_target,
            compile_s=r.compile_s,
            run_s=r.run_s,
        )
        for r in results
    ]
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(dict(steps=args.steps, seed=args.seed, race_s=race_s, results=summary), f, indent=1)
    written = [os.path.join(out, "results.json")]
    if not args.no_plot:
        png = os.path.join(out, "race.png")
        figure(problems, results, png, title=f"gradxform race: {args.steps} steps, seed {args.seed}")
        written.insert(0, png)
    total = time.perf_counter() - start
    print(f"\n{len(results)} runs x {args.steps} steps: trained in {race_s:.1f} s, {total:.1f} s with the report;")
    print(f"wrote {' and '.join(written)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `gradxform` console script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError("choose a command: race (see gradxform race --help)")
        return run_race(args)
    except UsageError as err:
        cmd = "gradxform race" if argv and argv[0] == "race" else "gradxform"
        print(f"{cmd}: error: {err}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("gradxform: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
