"""`vigil bench fuzz`: registered, and its output is counts and rates that add up."""

from vigil.cli import build_parser
from vigil.tools.bench.fuzz import bench_fuzz


def test_the_command_is_registered():
    args = build_parser().parse_args(["bench", "fuzz", "--payloads", "1000", "--seed", "3"])
    assert (args.target, args.payloads, args.seed) == ("fuzz", 1000, 3)


def test_a_short_run_adds_up():
    result = bench_fuzz(payloads=400, seed=2)
    contract, pipeline = result["contract"], result["pipeline"]
    assert contract["payloads"] == contract["good"] + contract["mutants"] == 400
    assert sum(contract["by_mutation"].values()) <= contract["mutants"] and contract["payloads_per_s"] > 0
    assert pipeline["messages"] == 40 and pipeline["readings_stored"] >= pipeline["good_samples"]
    assert pipeline["dead_letters"] == sum(pipeline["rejected_by_reason"].values())
