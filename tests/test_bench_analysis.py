"""Per-layer join and the detrimental-pruner filter (examples + hypothesis properties)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from benchsuite.bench import parse_report_folder
from benchsuite.bench.selection import (
    DETRIMENTAL,
    GAIN,
    NO_GAIN,
    classify_cases,
    classify_layers,
    classify_speedup,
    noise_band,
    summarise,
    write_search_space,
)
from studies.analysis import compare_layers, map_layers, module_table, scope_of

DATA = Path(__file__).parent / "data" / "bench_reports"


def test_scope_names() -> None:
    assert scope_of("/layer1/layer1.0/conv1/Conv/WithoutBiases") == ("layer1.0.conv1", "Conv")
    assert scope_of("/layer2/layer2.0/downsample/downsample.0/Conv/WithoutBiases") == (
        "layer2.0.downsample.0", "Conv")
    assert scope_of("/0/Conv/WithoutBiases") == ("0", "Conv")
    assert scope_of("/Flatten") == (None, "Flatten")
    assert scope_of("Convolution_7") == (None, None)  # 2021.4 names carry no scope


def test_resnet20_layers_map_to_torch_modules() -> None:
    _, frame = parse_report_folder(DATA / "ov2026_resnet20_bf16")
    convs = ["conv1", *(f"layer{s}.{b}.conv{c}" for s in (1, 2, 3) for b in range(3)
                         for c in (1, 2)), "layer2.0.downsample.0", "layer3.0.downsample.0"]
    macs = {name: 1.0e6 for name in convs} | {"fc": 640.0}
    mapped = map_layers(frame, macs)
    executed = mapped[(mapped["status"] == "EXECUTED") & (mapped["kind"] != "other")]
    assert set(executed["module"]) == set(macs)  # fc found through the output-named Gemm
    reorders = mapped[mapped["layer_type"] == "Reorder"]
    assert reorders["module"].isna().all() and (reorders["kind"] == "other").all()
    table = module_table(frame, macs)
    assert math.isclose(table["share"].sum(), 1.0)
    assert math.isclose(table["real_time_us"].sum(), frame["real_time_us"].sum())
    assert "(other)" in table.index and table.loc["fc", "macs"] == 640.0


layer_names = st.lists(st.from_regex(r"[a-z]{1,6}[0-9]?", fullmatch=True), min_size=1,
                       max_size=8, unique=True)


@st.composite
def per_layer_frames(draw: st.DrawFn) -> tuple[pandas.DataFrame, dict[str, float]]:
    names = draw(layer_names)
    rows, macs = [], {}
    for name in names:
        kind = draw(st.sampled_from(["Convolution", "FullyConnected", "Reorder", "Eltwise"]))
        t = draw(st.floats(0, 500, allow_nan=False).map(lambda v: round(v, 3)))
        rows.append({"layer": f"/{name}/Conv", "status": "EXECUTED", "layer_type": kind,
                     "exec_type": "x_f32", "real_time_us": t, "cpu_time_us": t})
        if kind in ("Convolution", "FullyConnected"):
            macs[name] = draw(st.floats(1, 1e9, allow_nan=False))
    return pandas.DataFrame(rows), macs


@settings(max_examples=30, deadline=None)
@given(per_layer_frames())
def test_join_of_identical_tables(data: tuple[pandas.DataFrame, dict[str, float]]) -> None:
    frame, macs = data
    cmp = compare_layers(frame, frame, macs, macs)
    assert math.isclose(cmp["real_time_us_dense"].sum(), frame["real_time_us"].sum(),
                        abs_tol=1e-6)
    assert (cmp["delta_us"].abs() < 1e-9).all()
    timed = cmp[cmp["real_time_us_pruned"] > 0]
    assert (timed["speedup"] - 1).abs().max() < 1e-9 if len(timed) else True
    with_macs = timed.dropna(subset=["latency_efficiency"])
    assert ((with_macs["latency_efficiency"] - 1).abs() < 1e-9).all()
    verdicts = classify_layers(cmp, cv_dense=0.05, cv_pruned=0.05)["verdict"]
    assert set(verdicts) <= {NO_GAIN}


@settings(max_examples=30, deadline=None)
@given(per_layer_frames(), st.data())
def test_layer_slower_beyond_noise_is_flagged(data: tuple[pandas.DataFrame, dict[str, float]],
                                              draw: st.DataObject) -> None:
    frame, macs = data
    i = draw.draw(st.integers(0, len(frame) - 1))
    frame.loc[i, "layer_type"] = "Convolution"  # "other" layers are pooled into one row
    frame.loc[i, "real_time_us"] = draw.draw(st.floats(20, 500))
    slower = frame.copy()
    slower.loc[i, "real_time_us"] = frame.loc[i, "real_time_us"] * 1.5
    cmp = classify_layers(compare_layers(frame, slower, macs, macs), cv_dense=0.02,
                          cv_pruned=0.02)
    key = cmp.index[cmp["real_time_us_pruned"] > cmp["real_time_us_dense"] + 1e-9]
    assert len(key) == 1 and cmp.loc[key[0], "verdict"] == DETRIMENTAL
    assert (cmp.drop(index=key)["verdict"] == NO_GAIN).all()


cvs = st.floats(0, 0.3, allow_nan=False)


@given(st.floats(1e-3, 1e4, allow_nan=False), cvs, cvs)
def test_identical_cases_are_no_gain(latency: float, cv_d: float, cv_p: float) -> None:
    case = {"recipe": "r", "speedup": latency / latency, "cv_dense": cv_d, "cv_pruned": cv_p}
    assert classify_cases([case])["verdict"].tolist() == [NO_GAIN]


@given(st.floats(0.05, 20, allow_nan=False), cvs, cvs)
def test_classifier_is_symmetric_and_respects_noise(s: float, cv_d: float, cv_p: float) -> None:
    noise = noise_band(cv_d, cv_p)
    a, b = classify_speedup(s, noise), classify_speedup(1 / s, noise)
    assert {a, b} in ({NO_GAIN}, {GAIN, DETRIMENTAL})
    if abs(math.log(s)) <= math.log1p(noise) * 0.999:
        assert a == NO_GAIN
    if s > (1 + noise) * 1.001:
        assert a == GAIN


def test_search_space_file(tmp_path: Path) -> None:
    cases = [
        {"recipe": "l1_filters", "paradigm": "structured", "speedup": 1.7, "cv": 0.03,
         "params": {"ratio": 0.5, "round_to": 8}},
        {"recipe": "l1_filters", "paradigm": "structured", "speedup": 1.2, "cv": 0.03,
         "params": {"ratio": 0.3, "round_to": 1}},
        {"recipe": "l1_filters", "paradigm": "structured", "speedup": 0.97, "cv": 0.03,
         "params": {"ratio": 0.1, "round_to": 1}},
        {"recipe": "agp_elementwise", "paradigm": "elementwise", "speedup": 1.01, "cv": 0.02,
         "params": {"final_sparsity": 0.8}},
        {"recipe": "odd_width", "paradigm": "structured", "speedup": 0.8, "cv": 0.02},
    ]
    classified = classify_cases(cases)
    by_recipe = summarise(classified).set_index("recipe")["verdict"].to_dict()
    assert by_recipe == {"l1_filters": GAIN, "agp_elementwise": NO_GAIN, "odd_width": DETRIMENTAL}
    space = yaml.safe_load(write_search_space(classified, tmp_path / "space.yaml").read_text())
    assert list(space["keep"]) == ["l1_filters"]
    assert space["keep"]["l1_filters"]["parameters"]["ratio"] == {"min": 0.3, "max": 0.5}
    assert space["parameters"]["recipe"] == {"values": ["l1_filters"]}
    assert set(space["dropped"]) == {"agp_elementwise", "odd_width"} and space["k"] == 2.0
