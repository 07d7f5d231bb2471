"""The ``modelpress`` command: thin subcommands over the Python API.

    modelpress analyze MODEL [--task TASK] [--json]
    modelpress compress MODEL --task TASK --recipe RECIPE.yaml --out OUT [--report DIR] [--json]
    modelpress eval MODEL_OR_FILE --task TASK [--json]
    modelpress bench MODEL_OR_FILE --task TASK [--batch N] [--threads N] [--baseline MODEL] [--json]
    modelpress inspect FILE [--json]
    modelpress demo

With ``--json`` the command prints exactly one JSON object on stdout; progress and messages go to stderr. A user
error prints one line ``error: …`` and exits 2 (``--debug`` shows the traceback).

Example:
    >>> main(["eval", "zoo:no-such-model", "--task", "digits"])
    Traceback (most recent call last):
    ...
    SystemExit: 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelpress.errors import ModelpressError

__all__ = ["main"]


def _task_for(model_spec: str, task_spec: str | None) -> Any:
    from modelpress.tasks.registry import resolve_task
    from modelpress.zoo import zoo_entry

    if task_spec is None:
        if model_spec.startswith("zoo:"):
            task_spec = zoo_entry(model_spec[4:]).default_task  # an unknown name fails here, listing known ones
        else:
            raise ModelpressError("--task", "a task name for a model outside the zoo", "<nothing>",
                                  "add --task mnist5k (or digits, sentences, sentences-large, sentences-xl, "
                                  "package.module:factory)")
    return resolve_task(task_spec)


def _machine() -> str:
    import torch

    return (f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.backends.cpu.get_cpu_capability()}")


def _emit(args: argparse.Namespace, data: dict[str, Any], human: str) -> None:
    if args.json:
        print(json.dumps(data, default=float))
    else:
        print(human)


def cmd_analyze(args: argparse.Namespace) -> int:
    from modelpress.analyze import profile_model
    from modelpress.sources import load_model
    from modelpress.task import check_model_runs

    task = _task_for(args.model, args.task)
    model = load_model(args.model, task)
    check_model_runs(model, task)
    inputs = task.example_inputs(args.batch)
    prof = profile_model(model, inputs, latency=not args.no_latency, threads=args.threads, runs=args.runs)
    data = {"model": args.model, "task": task.name, **prof.to_dict()}
    lines = [f"{args.model} on {task.name}: {prof.params:,} params, {prof.nonzeros:,} nonzeros, "
             f"{prof.flops:,} FLOPs/example, {data['bytes']:,} bytes packed"]
    if prof.latency:
        lines.append(f"latency {prof.latency.median_ms:.3f} ms (median of {prof.latency.runs}, batch "
                     f"{prof.latency.batch}, {prof.latency.threads} threads)")
    lines += [f"  {r.name:<40} {r.kind:<18} {r.params:>10,} params {r.flops:>14,} FLOPs" for r in prof.layers]
    _emit(args, data, "\n".join(lines))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from modelpress.sources import load_model

    task = _task_for(args.model, args.task)
    model = load_model(args.model, task)
    metrics = task.evaluate(model)
    path = Path(args.model)
    file_bytes = path.stat().st_size if path.is_file() else None
    data = {"model": args.model, "task": task.name, "metrics": metrics, "bytes": file_bytes}
    human = f"{args.model} on {task.name} (held-out): " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
    if file_bytes is not None:
        human += f"; file {file_bytes:,} bytes"
    _emit(args, data, human)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from modelpress.evaluate.latency import measure_latency
    from modelpress.sources import load_model

    task = _task_for(args.model, args.task)
    model = load_model(args.model, task)
    inputs = task.example_inputs(args.batch)
    data: dict[str, Any] = {"model": args.model, "task": task.name}
    baseline = load_model(args.baseline, task) if args.baseline else None
    # With a baseline both are timed in this one process, alternating, so machine noise hits both alike.
    rounds = 3 if baseline is not None else 1
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(measure_latency(model, inputs, threads=args.threads, runs=args.runs, warmup=args.warmup))
        if baseline is not None:
            theirs.append(measure_latency(baseline, inputs, threads=args.threads, runs=args.runs,
                                          warmup=args.warmup))
    best = sorted(ours, key=lambda lat: lat.median_ms)[len(ours) // 2]
    data.update(latency_ms=best.median_ms, p10_ms=best.p10_ms, p90_ms=best.p90_ms, batch=best.batch,
                threads=best.threads, runs=best.runs, warmup=best.warmup, input_shapes=best.input_shapes)
    human = (f"{args.model}: {best.median_ms:.3f} ms median (p10 {best.p10_ms:.3f}, p90 {best.p90_ms:.3f}) over "
             f"{best.runs} runs, batch {best.batch}, {best.threads} threads, inputs {best.input_shapes}")
    if baseline is not None:
        base = sorted(theirs, key=lambda lat: lat.median_ms)[len(theirs) // 2]
        data.update(baseline=args.baseline, baseline_latency_ms=base.median_ms,
                    speedup=base.median_ms / best.median_ms)
        human += f"\nbaseline {args.baseline}: {base.median_ms:.3f} ms → speedup {data['speedup']:.2f}x"
    _emit(args, data, human)
    return 0


def _report_info(model: str, task: Any, recipe: Any) -> dict[str, Any]:
    return {"model": model, "task": task.name, "primary_metric": task.primary_metric,
            "higher_is_better": task.higher_is_better, "recipe": recipe.name,
            "date": time.strftime("%Y-%m-%d %H:%M"), "machine": _machine()}


def cmd_compress(args: argparse.Namespace) -> int:
    from modelpress.recipe import load_recipe, run
    from modelpress.report import print_table, write_html, write_json
    from modelpress.sources import load_model

    recipe = load_recipe(args.recipe)  # validated before anything is loaded or trained
    task = _task_for(args.model, args.task)
    model = load_model(args.model, task)
    result = run(recipe, model, task, out=args.out, quiet=args.quiet or args.json)
    info = _report_info(args.model, task, recipe)
    data: dict[str, Any] = {"out": str(result.out), "history": result.history.to_dicts(), "recipe": recipe.to_dict()}
    if args.report:
        report_dir = Path(args.report)
        data["report_json"] = str(write_json(result.history, info, report_dir / "report.json"))
        data["report_html"] = str(write_html(result.history, info, report_dir / "report.html"))
    if args.json:
        print(json.dumps(data, default=float))
    else:
        from rich.console import Console

        print_table(result.history, info, Console())
        print(f"compressed file: {result.out} ({result.out.stat().st_size:,} bytes)")
        if args.report:
            print(f"HTML report: {data['report_html']}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from modelpress.format import describe_file

    rows = describe_file(args.file)
    total = Path(args.file).stat().st_size
    data = {"file": args.file, "bytes": total, "tensors": rows}
    lines = [f"{args.file}: {total:,} bytes, {len(rows)} tensors"]
    for r in rows:
        lines.append(f"  {r['name']:<40} {r['dtype']:<9} {r['shape']!s:<16} {r['stored_bytes']:>10,} B "
                     f"{r['bits_per_element']:>7.3f} bits/elem  {r['chain']}")
    _emit(args, data, "\n".join(lines))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from modelpress.demo import run_demo

    return run_demo(out_dir=Path(args.out), quiet=args.quiet)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelpress", description="Model compression with real bytes, real speed.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        p.add_argument("--quiet", action="store_true", help="no progress output")
        # SUPPRESS: a subcommand's default must not overwrite a --debug given before the subcommand
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks of errors")

    p = sub.add_parser("analyze", help="parameters, nonzeros, FLOPs, bytes, latency, memory per layer")
    p.add_argument("model")
    p.add_argument("--task")
    p.add_argument("--batch", type=int, default=1, help="batch size for latency and memory (default 1)")
    p.add_argument("--threads", type=int, help="torch threads for latency (default: torch's)")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--no-latency", action="store_true")
    common(p)
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("compress", help="apply a recipe, write the compressed file, report")
    p.add_argument("model")
    p.add_argument("--task")
    p.add_argument("--recipe", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--report", help="directory for report.json and report.html")
    common(p)
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("eval", help="metrics on the task's held-out split")
    p.add_argument("model")
    p.add_argument("--task")
    common(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="median latency (optionally against a baseline, same run)")
    p.add_argument("model")
    p.add_argument("--task")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--baseline", help="another model to time in the same run; reports the speedup")
    common(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("inspect", help="list a compressed file's tensors, codec chains and bits per weight")
    p.add_argument("file")
    common(p)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("demo", help="run the main demo and print its report")
    p.add_argument("--out", default="out/demo", help="directory for the compressed file and the report")
    common(p)
    p.set_defaults(func=cmd_demo)
    return parser


def _check_positive(args: argparse.Namespace) -> None:
    for name in ("batch", "threads", "runs"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise ModelpressError(f"--{name}", "a whole number ≥ 1", value, f"pass --{name} 1 or more")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``modelpress`` command; returns the exit code (2 for user errors)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever fetched at run time
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = _parser().parse_args(argv)
    if getattr(args, "quiet", False) or getattr(args, "json", False):
        from modelpress.progress import set_quiet

        set_quiet(True)
    try:
        _check_positive(args)
        return int(args.func(args))
    except ModelpressError as e:
        if args.debug:
            raise
        message = " | ".join(line for line in str(e).splitlines() if line)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("error: interrupted; no partial output was written", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    sys.exit(main())
