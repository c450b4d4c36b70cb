import pytest

from benchsuite.pipeline.grid import GridError, generate_cases
from benchsuite.recipe.case import Case

RECIPE = "version: 1\npruners:\n  p:\n    class: SparsityLevelParameterPruner\n" \
         "    levels: {'*': ${sparsity=0.5}}\npolicies:\n  - pruner: {instance_name: p}\n" \
         "    epochs: [0]\n"


@pytest.fixture
def folder(tmp_path):
    for name in ("agp_filters", "level", "other"):
        (tmp_path / f"{name}.yaml").write_text(RECIPE)
    (tmp_path / "grid.yaml").write_text(
        "models: [resnet20, resnet56]\ndevices: [CPU]\nprecisions: [f32, bf16]\n"
        "recipes:\n  agp_filters: {sparsity: [0.5, 0.7]}\n  level: {sparsity: [0.9]}\n")
    return tmp_path


def test_cases_and_readable_ids(folder):
    cases = generate_cases(folder, "agp_*,level")
    ids = [c.label for c in cases]
    assert len(ids) == 2 * 2 * 3 == len(set(ids))
    assert "resnet20-agp_filters-0.5-CPU-f32" in ids
    assert "resnet56-level-0.9-CPU-bf16" in ids
    assert all(isinstance(c, Case) for c in cases)


def test_filters_override_the_grid(folder):
    cases = generate_cases(folder, "agp_filters", models=["small_cnn"], precisions=["default"])
    assert [c.label for c in cases] == ["small_cnn-agp_filters-0.5-CPU-default",
                                        "small_cnn-agp_filters-0.7-CPU-default"]
    assert cases[0].precision is None  # the device's own default precision
    with pytest.raises(GridError, match=r"--recipes 'nothing\*' matched no recipe in .*"
                                        r"\(known: agp_filters, level, other\)"):
        generate_cases(folder, "nothing*")  # an empty selection is an error, never a silent pass
    unlisted = generate_cases(folder, "other", models=["resnet20"], precisions=["f32"])
    assert [c.label for c in unlisted] == ["resnet20-other-default-CPU-f32"]


def test_case_ids_are_content_hashes(folder):
    a, b = generate_cases(folder, "agp_filters", models=["resnet20"], precisions=["f32"])
    assert a.case_id != b.case_id
    before = a.case_id
    (folder / "agp_filters.yaml").write_text(RECIPE.replace("epochs: [0]", "epochs: [0, 1]"))
    a2, _ = generate_cases(folder, "agp_filters", models=["resnet20"], precisions=["f32"])
    assert a2.label == a.label and a2.case_id != before  # the recipe text is in the hash


@pytest.mark.parametrize("grid,match", [
    ("models: resnet20\n", "models: must be a non-empty list"),
    ("model: [resnet20]\n", "model: unknown key"),
    ("recipes:\n  missing: {sparsity: [0.5]}\n", "recipes.missing: no recipe file"),
    ("recipes:\n  level: {sparsity: 0.5}\n", "recipes.level.sparsity: must be a non-empty list"),
    ("models: [resnet20\n", "not valid YAML"),
])
def test_bad_grid_file_errors(folder, grid, match):
    (folder / "grid.yaml").write_text(grid)
    with pytest.raises(GridError, match=match) as e:
        generate_cases(folder, "*")
    assert str(folder / "grid.yaml") in str(e.value)


def test_default_selection_and_model_folders(folder):
    (folder / "resnet56").mkdir()
    (folder / "resnet56" / "blocks.yaml").write_text(RECIPE)
    (folder / "sweeps").mkdir()
    (folder / "sweeps" / "s.yaml").write_text("method: bayes\n")  # not a recipe
    default = {c.recipe_name for c in generate_cases(folder)}
    assert default == {"agp_filters", "level"}  # what the grid lists
    cases = generate_cases(folder, "resnet56/*", precisions=["f32"])
    assert [c.label for c in cases] == ["resnet56-blocks-default-CPU-f32"]  # its folder's model
    forced = generate_cases(folder, "resnet56/*", models=["resnet20"], precisions=["f32"])
    assert [c.model for c in forced] == ["resnet20"]
    with pytest.raises(GridError, match="'sweeps/\\*' matched no recipe"):
        generate_cases(folder, "sweeps/*")  # sweep configs are not recipes


FOUND = """# found_by: sweep r56 (schedules/sweeps/x.yaml),
#   engine SweepsEngine, method bayes
# trial: 11
# case:
#   model: resnet56
#   dataset: digits
#   device: CPU
#   precision: f32
#   epochs: 4
#   dense_epochs: 8
# result:
#   speedup: 3.5
# Depth + width, the recipe's own header comment (prose, not part of the found header):
# Template: 4, 0.45, 8.
""" + RECIPE


def test_found_recipe_runs_as_it_was_found(folder):
    (folder / "found").mkdir()
    (folder / "found" / "r56.yaml").write_text(FOUND)
    assert "found/r56" not in {c.recipe_name for c in generate_cases(folder)}  # opt-in
    (case,) = generate_cases(folder, "found/*", base=Case(recipe="", epochs=3, dense_epochs=5))
    assert (case.model, case.device, case.precision) == ("resnet56", "CPU", "f32")
    assert (case.epochs, case.dense_epochs, case.dataset) == (4, 8, "digits")
    (forced,) = generate_cases(folder, "found/*", models=["resnet20"], precisions=["bf16"])
    assert (forced.model, forced.precision, forced.epochs) == ("resnet20", "bf16", 4)


def test_label_names_every_setting_that_is_not_the_default():
    from dataclasses import replace

    base = Case(recipe="l1_filters", params={"sparsity": 0.5})
    assert base.label == "resnet20-l1_filters-0.5-CPU-f32"  # the default grid's labels stay
    mine = replace(base, model="mypkg.models:tiny", dataset="imagefolder:/data/pets", seed=1,
                   epochs=5, dense_epochs=10)
    assert mine.label == ("mypkg.models.tiny-l1_filters-0.5-CPU-f32-imagefolder.pets-seed1-ep5-"
                          "dense10")
    changes = [("epochs", 4), ("dense_epochs", 7), ("seed", 2), ("dataset", "cifar10"),
               ("niter", 100), ("repeats", 5), ("train_images", None), ("control", "scratch")]
    labels = {replace(base, **{k: v}).label for k, v in changes}
    assert len(labels) == len(changes) and base.label not in labels  # all told apart


def test_a_fifo_named_like_a_recipe_is_skipped_with_a_message(folder, tmp_path_factory):
    """A FIFO `x.yaml` in --schedules became a case failing with FileNotFoundError x.yaml.yaml
    (and reading it would block)."""
    import os

    mine = tmp_path_factory.mktemp("mine")
    (mine / "own.yaml").write_text(RECIPE)
    os.mkfifo(mine / "x.yaml")
    with pytest.warns(UserWarning, match=rf"{mine / 'x.yaml'}: not a regular file, skipped"):
        cases = generate_cases(folder, models=["resnet20"], precisions=["f32"],
                               extra_folders=[mine])
    assert [c.label for c in cases] == ["resnet20-own-default-CPU-f32"]
    with pytest.warns(UserWarning, match="not a regular file"), \
            pytest.raises(GridError, match=r"--recipes 'x' matched no recipe"):
        generate_cases(folder, "x", extra_folders=[mine])


def test_a_case_asked_for_twice_runs_once(folder):
    """Hostile round 4: `--model small_cnn,small_cnn --device CPU,CPU --force` collected four
    items (ids suffixed 0..3) for one case; it ran four times, four rows in one session."""
    cases = generate_cases(folder, "level", models=["small_cnn", "small_cnn"],
                           devices=["CPU", "CPU"])
    assert [c.label for c in cases] == ["small_cnn-level-0.9-CPU-f32",
                                        "small_cnn-level-0.9-CPU-bf16"]
