"""python -m bench NAME [--quick] [--data DIR] [--json-out FILE]; NAME all runs them all."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import sys
from pathlib import Path

from bench.abstention import run_abstention
from bench.answers import MODES, SETS, run_answers
from bench.arena import run_arena
from bench.beir import run_beir
from bench.generation import run_generation
from bench.ingest import run_ingest
from bench.injection import run_injection
from bench.peer import run_peer
from bench.pipeline import run_pipeline
from bench.refusal import run_refusal
from bench.report import Result, print_table
from bench.retrieval import run_retrieval
from bench.scale import run_scale
from bench.serve import run_serve
from bench.soak import run_soak

BENCHMARKS = {
    "abstention": run_abstention,
    "answers": run_answers,
    "arena": run_arena,
    "generation": run_generation,
    "ingest": run_ingest,
    "injection": run_injection,
    "peer": run_peer,
    "pipeline": run_pipeline,
    "refusal": run_refusal,
    "retrieval": run_retrieval,
    "retrieval-beir": run_beir,
    "serve": run_serve,
    "soak": run_soak,
    "retrieval-scale": run_scale,
}


def main(argv: list[str] | None = None) -> int:
    """Run the named benchmark(s), print their tables, write JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("name", choices=[*BENCHMARKS, "all"])
    parser.add_argument("--quick", action="store_true", help="A smaller sample, for a smoke run.")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("../shared/data"),
        help="The shared evaluation data folder.",
    )
    parser.add_argument(
        "--json-out",
        type=Path,
        default=None,
        help="Where to write JSON (default bench/results/NAME.json).",
    )
    parser.add_argument("--set", action="append", choices=SETS, dest="sets",
                        help="answers, retrieval: a set (repeatable; default all).")  # fmt: skip
    parser.add_argument("--mode", action="append", choices=MODES, dest="modes",
                        help="answers: an answer mode (repeatable; default all).")  # fmt: skip
    parser.add_argument("--budget-minutes", type=float, default=None, dest="budget_minutes",
                        help="arena: the RAFT training budget (30).")  # fmt: skip
    parser.add_argument("--limit", type=int, default=None,
                        help="answers: questions per set (12 if --quick).")  # fmt: skip
    parser.add_argument("--work", type=Path, default=None,
                        help="arena: keep the run here; the same command resumes it.")  # fmt: skip
    parser.add_argument("--ood-limit", type=int, default=None, dest="ood_limit",
                        help="arena: ClapNQ questions of each kind and Python FAQ questions "
                             "(300).")  # fmt: skip
    args = parser.parse_args(argv)
    names = list(BENCHMARKS) if args.name == "all" else [args.name]
    chosen = {k: v for k, v in (("sets", args.sets), ("modes", args.modes),
                                ("limit", args.limit), ("work", args.work),
                                ("ood_limit", args.ood_limit),
                                ("budget_minutes", args.budget_minutes)) if v}  # fmt: skip
    for name in names:
        run = BENCHMARKS[name]
        unknown = set(chosen) - set(inspect.signature(run).parameters)
        if unknown:
            parser.error(f"{name} does not take --{', --'.join(sorted(unknown))}")
        result: Result = run(data=args.data, quick=args.quick, **chosen)
        result.context.update(
            {
                "quick": args.quick,
                "load_average": list(os.getloadavg()),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            }
        )
        print_table(name, result)
        out = args.json_out or Path("bench/results") / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"benchmark": name, **result.to_dict()}, indent=2) + "\n")
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
