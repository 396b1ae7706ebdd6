"""`make reproduce`'s smoke version: every paper row runs for a few iterations and is reported."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def load_script():
    """scripts/reproduce.py as a module; its parts are the package scripts/reproduction/."""
    if str(REPO / "scripts") not in sys.path:  # where `python scripts/reproduce.py` finds them
        sys.path.insert(0, str(REPO / "scripts"))
    return importlib.import_module("reproduce")


def load_sweep():
    load_script()
    return importlib.import_module("reproduction.sweep")


def test_every_row_runs_and_is_reported(tmp_path):
    mod = load_script()
    assert mod.main(["--smoke", "--workers", "1", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "reproduction.md").read_text()
    results = json.loads((tmp_path / "reproduction.json").read_text())
    assert {(r["row"], r["label"]) for r in results} == {(r.row, r.label) for r in mod.FULL}
    assert not any(r.get("skipped") for r in results)
    assert "Smoke run" in text
    for needle in ("| LeNet-300-100 | 2.48 ± 0.21 |", "| LeNet-5-Caffe | 1.64 ± 0.13 |",  # paper numbers
                   "| dsg-mlp | γ=0.8 |", "| dsg-lenet | γ=0.9 |", "MNIST in place of Fashion-MNIST",
                   "| reroute after r layers | FLOPs % | accuracy % |", "--dataset cifar10 --data-dir DIR"):
        assert needle in text
    ml = next(r for r in results if r["row"] == "mlevel-lenet5" and r["label"] == "reroute-trained")
    flops = [p["flops_per_sample"] for p in ml["evaluation"]["reroute"]]
    assert flops == sorted(flops) and len(flops) == 5  # LeNet-5-Caffe: 4 layers, 5 reroute points

    # runs split over two processes merge into the same report
    half = len(results) // 2
    (tmp_path / "a.json").write_text(json.dumps(results[:half]))
    (tmp_path / "b.json").write_text(json.dumps(results[half:]))
    merged = tmp_path / "merged"
    assert mod.main(["--smoke", "--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                     "--out", str(merged)]) == 0

    def body(t: str) -> list[str]:
        return [line for line in t.splitlines() if "Total wall time" not in line]
    assert body((merged / "reproduction.md").read_text()) == body(text)


def test_a_run_past_the_deadline_is_listed_not_run(tmp_path):
    mod = load_script()
    assert mod.main(["--smoke", "--workers", "1", "--out", str(tmp_path), "--rows", "dsg-mlp",
                     "--budget-min", "0"]) == 0
    text = (tmp_path / "reproduction.md").read_text()
    assert "Runs that did not fit the time budget" in text and "dsg-mlp γ=0.5 seed 0" in text


def test_resume_runs_only_what_is_missing(tmp_path, capsys):
    mod = load_script()
    first = tmp_path / "first"
    assert mod.main(["--smoke", "--workers", "1", "--out", str(first), "--rows", "dsg-mlp",
                     "--budget-min", "0"]) == 0  # every run past the deadline: all skipped
    earlier = json.loads((first / "reproduction.json").read_text())
    assert len(earlier) == 4 and all(r.get("skipped") for r in earlier)
    # pretend the dense run finished earlier with the planned 3 epochs, and γ=0.5 with only 1 (an
    # older plan): resuming keeps the dense run and runs the three γ runs
    kept = {"row": "dsg-mlp", "label": "dense", "seed": 0, "best_accuracy": 0.5, "last_accuracy": 0.5,
            "epochs_run": 3, "wall_s": 1.0, "history": [0.5] * 3}
    short = {**kept, "label": "γ=0.5", "epochs_run": 1, "history": [0.5]}
    (first / "reproduction.json").write_text(json.dumps([kept, short, *earlier[2:]]))
    capsys.readouterr()
    second = tmp_path / "second"
    assert mod.main(["--smoke", "--workers", "1", "--out", str(second), "--rows", "dsg-mlp",
                     "--resume", str(first / "reproduction.json")]) == 0
    ran = [line for line in capsys.readouterr().out.splitlines() if line.startswith("done ")]
    assert [line.split(":")[0] for line in ran] == [f"done dsg-mlp γ={g} seed 0" for g in (0.5, 0.8, 0.9)]
    results = json.loads((second / "reproduction.json").read_text())
    assert results[0] == kept and len(results) == 4 and not any(r.get("skipped") for r in results)


def test_methods_side_by_side_smoke(tmp_path):
    spec = importlib.util.spec_from_file_location("compare_methods", REPO / "scripts" / "compare_methods.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--smoke", "--out", str(tmp_path), "--methods", "dense,snfs,topkast"]) == 0
    results = {r["method"]: r for r in json.loads((tmp_path / "methods_compare.json").read_text())}
    assert results["dense"]["dw_needed_fraction"] == 1.0 and results["snfs"]["dw_needed_fraction"] == 1.0
    assert results["topkast"]["dw_needed_fraction"] == pytest.approx(0.2, abs=0.01)  # its backward set B
    for r in results.values():
        assert set(r["families"]) == {"edge-npu", "gpu-a100", "reram-isaac"}
        for fam in r["families"].values():
            assert fam["all"]["cycles"] > 0 and fam["all"]["dense_cycles"] > 0
    text = (tmp_path / "methods_compare.md").read_text()
    assert "| topkast | 0.100 |" in text and "gpu-a100: speedup" in text


def test_dst_pairings_are_the_official_trainers():
    mod = load_sweep()
    acc = [0.95, 0.97, 0.98, 0.98, 0.975]  # best 0.98, first reached at epoch 2
    rem = [0.50, 0.20, 0.10, 0.06, 0.06]  # lowest 0.06, first reached at epoch 3
    assert mod.dst_pairings(acc, rem) == {"remaining_at_best": 0.10, "best_remaining": 0.06,
                                          "accuracy_at_best_remaining": 0.98}


def sweep_result(alpha: float, remaining: list[float], accuracy: list[float], fc1_resets: int) -> dict:
    mod = load_sweep()
    return {"row": "dst-sweep-lenet5", "label": f"α={alpha:g}", "seed": 0, "alpha": alpha,
            "epochs_run": len(accuracy), "history": accuracy, "remaining_history": remaining,
            "remaining": remaining[-1], "best_accuracy": max(accuracy), "last_accuracy": accuracy[-1],
            "wall_s": 60.0, "layer_remaining": {"conv1": 0.25, "fc1": 0.0125},
            "resets": {"conv1": 0, "fc1": fc1_resets}, **mod.dst_pairings(accuracy, remaining)}


def test_sweep_report_marks_a_pairing_within_two_sigma_of_table_1():
    """LeNet-5-Caffe's Table 1 point is 1.64 ± 0.13 % at 99.11 %: a run is "within 2σ" when one of
    its two pairings lies in [1.38, 1.90] % remaining at 98.81 % accuracy or more."""
    runs = [r for r in load_script().SWEEP if r.row == "dst-sweep-lenet5"]
    mod = load_sweep()
    hit = sweep_result(1e-3, [0.05, 0.018, 0.0150], [0.985, 0.9880, 0.9885], 0)  # lowest: 1.50 % at 98.85
    miss = sweep_result(2e-3, [0.03, 0.0120, 0.0130], [0.985, 0.9890, 0.9870], 3)  # 1.20 / 1.30 %: too few
    low_acc = sweep_result(5e-4, [0.05, 0.0160], [0.970, 0.9870], 0)  # 1.60 % but at 98.70 %
    text = mod.sweep_report([hit, miss, low_acc], runs, 600.0, smoke=False)
    rows = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| 0.")}
    assert rows["| 0.001"].endswith("| yes: 98.85 % at 1.50 % | 1.0 min |")
    assert "| no |" in rows["| 0.002"] and "| no |" in rows["| 0.0005"]
    assert "- α = 0.002: conv1 25.00 % (0 resets), fc1 1.25 % (3 resets)" in text
    assert "Not run within the budget: α=0.0001, α=0.0015." in text


def test_labels_pick_runs_within_a_row(tmp_path):
    mod = load_script()
    with pytest.raises(SystemExit):  # an unknown label is a one-line usage error
        mod.main(["--sweep", "--rows", "dst-sweep-lenet5", "--labels", "α=0.3", "--out", str(tmp_path)])
    assert mod.main(["--sweep", "--rows", "dst-sweep-lenet5", "--labels", "α=0.0015", "--budget-min", "0",
                     "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "reproduction.json").read_text())
    assert [(r["label"], r.get("skipped")) for r in results] == [("α=0.0015", True)]
