"""The hwsim command line: commands work, user errors print one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hwsim.cli import main
from hwsim.cli.demo import DEMO_ARCHS

from .traces.helpers import write_trace


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwsim.cli", *args], capture_output=True, text=True)


def test_help_lists_subcommands():
    out = run("--help").stdout
    for cmd in ("demo", "train", "trace"):
        assert cmd in out


def test_train_then_info_then_validate(tmp_path, capsys):
    path = tmp_path / "run.trace"
    assert main(["train", "--method", "dense", "--model", "mlp", "--dataset", "digits",
                 "--epochs", "1", "--every", "5", "--out", str(path)]) == 0
    out = capsys.readouterr().out
    assert "22 iterations" in out and str(path) in out
    assert main(["trace", "info", str(path)]) == 0
    out = capsys.readouterr().out
    for text in ("fc1", "fc2", "out", "Density per tensor", "iterations 22 (6 with exact masks)",
                 "bwd-weight M×K×N", "64×64×128", "Effectual / algorithmic MACs"):
        assert text in out
    assert main(["trace", "validate", str(path)]) == 0
    assert "OK" in capsys.readouterr().out


def test_train_refuses_to_overwrite_without_flag(tmp_path, capsys):
    path = tmp_path / "run.trace"
    write_trace(path)
    assert main(["train", "--epochs", "1", "--out", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwsim: error:") and "--overwrite" in err


@pytest.mark.parametrize("case", ["missing_manifest", "bad_version", "truncated", "not_a_trace",
                                  "mask_size"])
def test_bad_traces_give_one_line_and_exit_2(tmp_path, case):
    path = tmp_path / "t"
    write_trace(path, n_iter=3, mask_every=1)
    if case == "missing_manifest":
        (path / "manifest.json").unlink()
        expect = "manifest: found no such file"
    elif case == "bad_version":
        doc = json.loads((path / "manifest.json").read_text())
        doc["format_version"] = 6
        (path / "manifest.json").write_text(json.dumps(doc))
        expect = "format_version: found 6; expected 1, 2, 3, 4 or 5"
    elif case == "truncated":
        f = path / "iter-00000001.masks.npz"
        f.write_bytes(f.read_bytes()[:100])
        expect = "iter-00000001.masks.npz: (archive): found unreadable data"
    elif case == "mask_size":
        import numpy as np

        f = path / "iter-00000002.masks.npz"
        with np.load(f) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["L0.dy"] = arrays["L0.dy"][:10]
        np.savez(f, **arrays)
        from traces.format.digest import seal

        seal(path)  # resealed: the check under test, not the file's digest, refuses it
        expect = "L0.dy: found uint8 of 10 bytes; expected uint8 of 128 bytes"
    else:
        path = tmp_path / "file.txt"
        path.write_text("x")
        expect = "path: found a file; expected a trace directory"
    proc = run("trace", "validate", str(path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hwsim: error: ") and expect in lines[0]


def test_unknown_model_is_a_user_error(tmp_path):
    proc = run("train", "--model", "nope", "--out", str(tmp_path / "t"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    from traces.zoo.models import MODELS

    assert {"mlp", "lenet5", "gpt-tiny", "vit-tiny", "dst-lstm-a"} <= set(MODELS)
    assert f"unknown model 'nope'; choose one of {sorted(MODELS)}" in proc.stderr


def test_demo_quick(tmp_path, capsys):
    import pandas as pd

    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "against dense training on the same machine" in out and "results.parquet" in out
    assert out.index("against dense training") < out.index("sparse features off")  # the honest one first
    summary = (tmp_path / "summary.txt").read_text(encoding="utf-8")  # README's excerpt is made from it
    assert out.endswith(summary)
    from .test_readme_demo import generator

    rows = generator().excerpt(summary)
    assert [r.split()[:2] for r in rows[2:]] == [list(r) for r in generator().ROWS]
    df = pd.read_parquet(tmp_path / "results.parquet")
    assert set(df["method"]) == {"dense", "dst", "dsg", "nm", "attn-topk"}
    assert set(df["arch"]) == set(DEMO_ARCHS)
    assert "eyeriss-v2-pe" not in DEMO_ARCHS  # a validation fixture, not a machine
    assert set(df["model"]) == {"lenet5", "gpt-tiny"}  # a conv net (the methods' regime), a transformer
    assert set(df[df["model"] == "gpt-tiny"]["method"]) == {"dense", "nm", "attn-topk"}
    assert "Transformer example: gpt-tiny" in summary
    for method in ("dense", "nm", "attn-topk"):
        assert (tmp_path / f"{method}-gpt-tiny-shakespeare.trace" / "manifest.json").exists()
    assert set(df["pass"]) == {"forward", "backward_data", "backward_weight", "update"}
    for method in ("dense", "dst", "dsg", "nm"):
        assert (tmp_path / f"{method}-lenet5-digits.trace" / "manifest.json").exists()


def test_archs_list_and_show(capsys):
    assert main(["archs", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("edge-npu", "eyeriss-v2-pe", "gpu-a100", "gpu-h100", "gpu-h200", "reram-isaac"):
        assert name in out
    assert main(["archs", "show", "gpu-a100"]) == 0
    out = capsys.readouterr().out
    assert "108 SMs × 4 tensor cores × 256 FMA/clock" in out and "peak_tops_structured_sparse" in out
    assert "tensor_core fma" in " ".join(out.split())
    assert main(["archs", "show", "edge-npu", "--yaml"]) == 0
    import archs

    assert archs.loads(capsys.readouterr().out) == archs.PRESETS["edge-npu"]


def test_archs_validate_reports_every_problem(tmp_path):
    import archs

    good = tmp_path / "good.yaml"
    good.write_text(archs.dump(archs.PRESETS["edge-npu"]))
    proc = run("archs", "validate", str(good))
    assert proc.returncode == 0 and proc.stdout.startswith(f"OK {good}")
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("  rows: 16", "  rows: -4").replace("  lanes: 16", "  lanez: 16"))
    proc = run("archs", "validate", str(bad))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"hwsim: error: {bad}: 3 problems:" in proc.stderr
    for text in ("compute.rows: must be > 0, got -4", "vector_unit.lanez: unknown key; did you mean 'lanes'?",
                 "vector_unit.lanes: missing"):
        assert text in proc.stderr


def test_synth_then_replay_with_parquet(tmp_path, capsys):
    import pandas as pd

    trace = tmp_path / "syn.trace"
    assert main(["trace", "synth", "--scalesim-topology", "tests/data/scalesim/gemm_layers.csv",
                 "--density", "x=0.5,w=0.7,dy=0.4", "--iterations", "2", "--out", str(trace)]) == 0
    assert "4 layers, 2 iteration(s)" in capsys.readouterr().out
    out = tmp_path / "r.parquet"
    assert main(["replay", str(trace), "--arch", "edge-npu", "--dataflow", "os", "--passes", "fwd,bwd-weight",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for word in ("forward", "backward_weight", "total", "speedup", "energy saving", "DRAM (MB)", "whole run"):
        assert word in text
    df = pd.read_parquet(out)
    assert set(df["pass"]) == {"forward", "backward_weight"} and set(df["iteration"]) == {0, 1}
    assert {"cycles", "dense_cycles", "energy_pj", "actual_macs", "effectual_macs"} <= set(df.columns)
    assert (df["algorithmic_macs"] == df["actual_macs"] + df["gated_macs"] + df["skipped_macs"]).all()


def test_replay_user_errors(tmp_path):
    from .traces.helpers import write_trace

    write_trace(tmp_path / "t")
    import archs

    tiny = tmp_path / "tiny-reram.yaml"  # a crossbar chip too small for the model's weights
    tiny.write_text(archs.dump(archs.replace(archs.PRESETS["reram-isaac"], {
        "reram.tiles": 1, "reram.imas_per_tile": 1, "reram.crossbars_per_ima": 1,
        "reram.weight_residency": "resident"})))
    for args, expect in ((["--arch", str(tiny)], "short by"),
                         (["--arch", "edge-npx"], "did you mean 'edge-npu'"),
                         (["--arch", "reram-isaac", "--dataflow", "ws"], "applies to PE arrays"),
                         (["--arch", "edge-npu", "--passes", "fwd,sideways"], "unknown pass 'sideways'"),
                         (["--arch", "edge-npu", "--iterations", "99"], "iteration 99 is not in"),
                         (["--arch", "edge-npu", "--out", "r.xlsx"], "use a .parquet or .csv")):
        proc = run("replay", str(tmp_path / "t"), *args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert expect in proc.stderr


def test_sigterm_during_a_write_leaves_no_temporary(tmp_path):
    """SIGTERM unwinds the CLI like Ctrl-C: the write in progress removes its temporary file."""
    import signal
    import textwrap
    import time

    code = textwrap.dedent(f"""
        import sys, time
        import traces.format.writer as w
        from hwsim.cli.main import main
        def slow(path, write):  # the real atomic_write, with a write that takes a while
            return original(path, lambda f: (f.write(b"x"), f.flush(), print("writing", flush=True),
                                             time.sleep(30)))
        original = w.atomic_write
        w.atomic_write = slow
        import analysis.html as h
        h.atomic_write = slow
        sys.exit(main(["report", {str(tmp_path / "r.csv")!r}, "--out", {str(tmp_path / "r.html")!r}]))
    """)
    from hwsim.simulate import simulate

    from .traces.helpers import write_trace

    write_trace(tmp_path / "t", n_iter=2, mask_every=1)
    simulate(tmp_path / "t", "edge-npu").save(tmp_path / "r.csv")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "writing"
    assert [p.name for p in tmp_path.glob(".r.html.tmp-*")]  # mid-write
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    time.sleep(0.1)
    assert proc.returncode == 143, proc.stderr.read()
    assert not list(tmp_path.glob(".r.html.tmp-*")) and not (tmp_path / "r.html").exists()


def test_replay_leads_with_the_method_against_dense_training(tmp_path, capsys):
    import json

    import pandas as pd

    from traces.synth import write_synthetic

    from .traces.helpers import LAYERS, write_trace

    write_trace(tmp_path / "dense", n_iter=4, mask_every=2)  # method "dense"
    write_synthetic(LAYERS, tmp_path / "sparse", batch=4, density={"x": 0.3, "w": 0.4, "dy": 0.5},
                    iterations=2)
    manifest = tmp_path / "sparse" / "manifest.json"
    m = json.loads(manifest.read_text())
    m["dataset"] = {"name": "random"}  # the same data as the dense one
    manifest.write_text(json.dumps(m))
    assert main(["replay", str(tmp_path / "sparse"), "--arch", "edge-npu", "--dense-trained",
                 str(tmp_path / "dense"), "--out", str(tmp_path / "r.parquet")]) == 0
    out = capsys.readouterr().out
    assert out.index("against dense training") < out.index("sparse features on against off")
    df = pd.read_parquet(tmp_path / "r.parquet")
    assert set(df["method"]) == {"synthetic", "dense"}  # both traces' rows are in the results
    per_it = df.groupby(["method", "iteration"])["cycles"].sum().groupby("method").mean()
    ratio = per_it["dense"] / per_it["synthetic"]
    line = next(ln for ln in out.splitlines() if ln.startswith("cycles"))
    assert line.split()[-1] == f"{ratio:.3f}x"
    assert main(["replay", str(tmp_path / "dense"), "--arch", "edge-npu", "--dense-trained",
                 str(tmp_path / "sparse")]) == 2
    assert "trained with 'synthetic'; give a trace trained with --method dense" in capsys.readouterr().err
    write_trace(tmp_path / "other", n_iter=2, mask_every=1, batch=8)
    assert main(["replay", str(tmp_path / "sparse"), "--arch", "edge-npu", "--dense-trained",
                 str(tmp_path / "other")]) == 2
    assert "record both with the same batch size" in capsys.readouterr().err


def test_train_transformer_and_lstm_from_the_command_line(tmp_path, capsys):
    import traces

    out = tmp_path / "gpt"
    assert main(["train", "--model", "gpt-tiny", "--dataset", "shakespeare", "--method", "attn-topk",
                 "--attn-k", "4", "--optimizer", "adamw", "--lr", "3e-3", "--epochs", "1",
                 "--batch-size", "4", "--max-batches", "2", "--every", "1", "--out", str(out)]) == 0
    tr = traces.load(out)
    assert len(tr) == 2 and tr.manifest["method"]["params"]["k"] == 4
    assert any(s.kind == "matmul" for s in tr.layers)
    capsys.readouterr()
    for args, error in ((["--model", "gpt-tiny", "--dataset", "digits"], "not text: a sequence model needs"),
                        (["--method", "rigl", "--optimizer", "adamw"], "works with optimizer sgd"),
                        (["--max-batches", "0"], "--max-batches: must be >= 1, got 0")):
        assert main(["train", *args, "--out", str(tmp_path / "x")]) == 2
        assert error in capsys.readouterr().err
