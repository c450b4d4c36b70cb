"""`benchsuite recipe check|dry-run FILE --model M`: see what a recipe does before training;
`benchsuite recipe list`: the recipe library, and which models each recipe fits.

  check     parse, validate and bind the recipe to the model (every weight name, argument and
            lr scheduler checked; the layers a pruner without `weights` selects by rule are
            printed); nothing is applied
  dry-run   apply the whole schedule to a freshly built model without training (masks,
            thinning, block removal) and print per-layer shapes, non-zeros and MACs, and the
            totals dense_macs, macs, dense_params, params, nnz_params (MACs as Distiller counts
            them: conv and linear layers, direct convolution; params: conv and linear weights)
  list      every recipe of the library (and of --schedules folders): its classes, template
            parameters and where it fits: "any model" (it names no weights and binds to a plain
            CNN, small_cnn, and to a CIFAR ResNet, resnet20), or the models whose weights it
            names (model-specific), or the probes it binds to and why not the others;
            --model M also binds every recipe to M
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchsuite.frontends.cli import input_shape
from benchsuite.recipe.catalog import PRUNERS
from benchsuite.recipe.recipe_error import RecipeError
from benchsuite.recipe.scale import scale_schedule
from benchsuite.recipe.schema import Recipe, load_recipe, parse_recipe
from benchsuite.recipe.template import read_recipe, render
from benchsuite.recipe.yamltext import load_yaml


def _param(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--param must be NAME=VALUE, got {text!r}")
    try:
        return name, load_yaml(value, f"--param {name}")
    except RecipeError as e:  # argparse would say only "invalid _param value"
        raise argparse.ArgumentTypeError(str(e)) from None


def recipe_file(text: str) -> Path:
    """A recipe file's path, or a recipe's name in the library (as pytest's --recipes takes it:
    `l1_filters`, `resnet20/block_removal`)."""
    path = Path(text)
    if path.is_file() or path.suffix in (".yaml", ".yml"):
        return path
    from benchsuite.core.paths import schedules_dir

    named = schedules_dir() / f"{text}.yaml"
    if named.is_file():
        return named
    raise RecipeError("", f"no recipe file {text} and no recipe {text!r} in the library "
                          f"{schedules_dir()} (benchsuite recipe list shows them)")


def _load(args: argparse.Namespace) -> Recipe:
    if args.schedule_scale == 1:
        return load_recipe(recipe_file(args.file), dict(args.param or []) or None)
    path = recipe_file(args.file)
    if not path.is_file():
        raise RecipeError("", f"recipe file not found: {path}")
    text = render(read_recipe(path), dict(args.param or []) or None, source=path.name)
    return parse_recipe(scale_schedule(text, args.schedule_scale, path.name), source=path.name)


def _check(args: argparse.Namespace) -> int:
    from benchsuite.prune.dryrun import bind
    from benchsuite.prune.fit import explain_misfit

    recipe = _load(args)
    try:
        _, sched = bind(recipe, args.model, args.input)
    except RecipeError as e:
        raise explain_misfit(RecipeError(e.path, e.message, recipe.source), recipe,
                             args.model) from None
    kinds = {k: sum(1 for p in recipe.policies if p.kind == k)
             for k in ("pruner", "regularizer", "lr_scheduler", "extension")}
    counts = ", ".join(f"{n} {k} polic{'y' if n == 1 else 'ies'}" for k, n in kinds.items() if n)
    print(f"{recipe.source}: ok on {args.model} ({counts or 'no policies'}; "
          f"pruning epochs 0..{recipe.last_epoch()})")
    for name, pruner in sched.pruners.items():
        comp = recipe.pruners[name]
        if "weights" in PRUNERS[comp.cls] and comp.args.get("weights") is None \
                and pruner.weights():
            chosen = [w.removesuffix(".weight") for w in pruner.weights()]
            print(f"  {comp.path}: {len(chosen)} layer{'s' * (len(chosen) != 1)} by rule: "
                  f"{', '.join(chosen)}")
    return 0


def _fmt(n: int) -> str:
    return f"{n:,}"


def _dry_run(args: argparse.Namespace) -> int:
    from benchsuite.prune.dryrun import dry_run
    from benchsuite.prune.fit import explain_misfit

    recipe = _load(args)
    try:
        result = dry_run(recipe, args.model, args.input)
    except RecipeError as e:
        raise explain_misfit(RecipeError(e.path, e.message, recipe.source), recipe,
                             args.model) from None
    if args.json:
        print(json.dumps(result.as_dict(), indent=1))
        return 0
    dense = {r.name: r for r in result.dense_rows}
    print(f"{recipe.source} on {args.model}, input {'x'.join(map(str, args.input))}, "
          f"epochs 0..{result.epochs - 1} applied without training")
    print(f"{'layer':<28} {'shape':<16} {'dense shape':<16} {'nnz':>9} {'sparsity':>8} "
          f"{'MACs':>12}")
    for r in result.rows:
        before = dense.get(r.name)
        shape = "x".join(map(str, r.shape))
        orig = "x".join(map(str, before.shape)) if before else "-"
        print(f"{r.name:<28} {shape:<16} {orig:<16} {r.nnz:>9} "
              f"{1 - r.nnz / max(1, r.params):>8.3f} {r.macs:>12,}")
    d, p = result.dense, result.pruned
    print(f"dense_macs   {_fmt(d['macs']):>14}")
    print(f"macs         {_fmt(p['macs']):>14}  ({p['macs'] / max(1, d['macs']):.4f} of dense)")
    print(f"dense_params {_fmt(d['params']):>14}")
    print(f"params       {_fmt(p['params']):>14}  ({p['params'] / max(1, d['params']):.4f})")
    print(f"nnz_params   {_fmt(p['nnz_params']):>14}  "
          f"({p['nnz_params'] / max(1, d['params']):.4f})")
    if result.removed_blocks:
        print(f"removed blocks: {', '.join(result.removed_blocks)}")
    return 0


def _classes(recipe: Recipe) -> list[str]:
    """The recipe's classes, in section order, each once."""
    out: list[str] = []
    for section in ("pruners", "regularizers", "extensions", "lr_schedulers"):
        for comp in recipe.section(section).values():
            if comp.cls not in out:
                out.append(comp.cls)
    return out


def _catalogue(folders: list[Path], models: list[str], shape: tuple[int, int, int]
               ) -> list[dict[str, Any]]:
    from benchsuite.models import MODEL_NAMES
    from benchsuite.pipeline.grid import recipe_files
    from benchsuite.prune.fit import binds, recipe_fit
    from benchsuite.recipe.template import template_parameters

    files: dict[str, Path] = {}
    for folder in folders:
        files |= recipe_files(folder)  # a later folder's recipe shadows a same-named one
    rows = []
    for name, path in sorted(files.items()):
        row: dict[str, Any] = {"name": name, "path": str(path)}
        head = name.split("/", 1)[0]  # a model's folder: the grid runs it on that model
        row["written_for"] = head if "/" in name and head in MODEL_NAMES else None
        try:
            row["template"] = template_parameters(read_recipe(path))
            recipe = load_recipe(path)
        except RecipeError as e:
            rows.append(row | {"error": str(e)})
            continue
        fit = recipe_fit(recipe, shape)
        row |= {"classes": _classes(recipe), "any_model": fit.any_model,
                "fits": fit.describe(), "fit": fit.as_dict()}
        row["on"] = {m: binds(recipe, m, shape) or "ok" for m in models}
        rows.append(row)
    return rows


def _list(args: argparse.Namespace) -> int:
    from benchsuite.core.paths import schedules_dir

    folders = [schedules_dir(), *(Path(d).expanduser() for d in args.schedules or [])]
    for folder in folders[1:]:
        if not folder.is_dir():
            raise RecipeError("", f"--schedules: no folder {folder}")
    models = [m for spec in args.model or [] for m in spec.split(",") if m]
    rows = _catalogue(folders, models, args.input)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    width = max(len(r["name"]) for r in rows) if rows else 0
    for r in rows:
        if "error" in r:
            print(f"{r['name']:<{width}}  does not load: {r['error']}")
            continue
        print(f"{r['name']:<{width}}  {r['fits']}")
        pad = " " * (width + 2)
        print(f"{pad}classes: {', '.join(r['classes']) or 'none (nothing pruned)'}")
        template = ", ".join(k if v is None else f"{k}={v}" for k, v in r["template"].items())
        print(f"{pad}template: {template or 'none'}")
        for model, verdict in r["on"].items():
            print(f"{pad}on {model}: {verdict}")
    fits = [r["fit"] for r in rows if "fit" in r]
    print(f"{len(rows)} recipes: {sum(f['any_model'] for f in fits)} fit any model (they name "
          f"no weights and bind to small_cnn and resnet20), "
          f"{sum(f['names_weights'] for f in fits)} name their weights (model-specific), "
          f"{sum(not f['any_model'] and not f['names_weights'] for f in fits)} bind to some "
          "models only")
    return 0


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("recipe", help="check a recipe, dry-run it on a fresh model, or "
                            "list the library and which models each recipe fits",
                            description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True)
    for name, func, helptext in (("check", _check, "validate and bind only"),
                                 ("dry-run", _dry_run, "apply the schedule without training")):
        p = actions.add_parser(name, help=helptext)
        p.add_argument("file", metavar="RECIPE",
                       help="a recipe YAML file, or a recipe's name in the library (l1_filters)")
        p.add_argument("--model", required=True,
                       help="resnet20, resnet32, resnet44, resnet56 or small_cnn "
                            "(Distiller's resnet56_cifar spelling accepted)")
        p.add_argument("--input", type=input_shape, default=(1, 32, 32),
                       help="input CxHxW [1x32x32, the suite's digits; CIFAR: 3x32x32]")
        p.add_argument("--param", type=_param, action="append",
                       help="template parameter NAME=VALUE (repeatable)")
        p.add_argument("--schedule-scale", type=float, default=1.0,
                       help="multiply every policy epoch and lr step (as pytest's option)")
        if name == "dry-run":
            p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)
    p = actions.add_parser("list", help="the recipe library: classes, template parameters, "
                           "which models each recipe fits")
    p.add_argument("--schedules", action="append", metavar="DIR",
                   help="a recipe folder of yours, listed after the library (repeatable)")
    p.add_argument("--model", action="append", metavar="M",
                   help="also bind every recipe to model M (a name or module:callable; "
                        "repeatable or comma-separated) [none]")
    p.add_argument("--input", type=input_shape, default=(3, 32, 32), metavar="CxHxW",
                   help="input CxHxW of the models bound to [3x32x32]")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_list)
