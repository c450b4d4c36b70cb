"""Parse and validate Distiller scheduling recipes (YAML) into plain dataclasses.

Grammar (Distiller's): `version: 1`, then the sections `pruners`, `regularizers`,
`lr_schedulers`, `extensions` (each a map of instance name -> {class: ..., args}), and
`policies`: a list whose items name one instance (`pruner:`, `regularizer:`, `lr_scheduler:` or
`extension:` with `instance_name`, optional `args`) and when it acts: `epochs: [...]` or
`starting_epoch` + `ending_epoch` + `frequency`. Unknown keys are errors; every error names its
key path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchsuite.recipe.catalog as catalog
from benchsuite.recipe.args import Arg, check_args, check_value
from benchsuite.recipe.recipe_error import RecipeError
from benchsuite.recipe.template import read_recipe, render
from benchsuite.recipe.yamltext import load_yaml, shown

SECTIONS = ("pruners", "regularizers", "lr_schedulers", "extensions")
KD = "knowledge_distillation"
POLICY_KINDS = {
    "pruner": "pruners", "regularizer": "regularizers",
    "lr_scheduler": "lr_schedulers", "extension": "extensions",
}


@dataclass
class Component:
    """One instance of a section: `pruners.<name>: {class: <cls>, ...args}`."""

    name: str
    cls: str
    args: dict[str, Any]
    section: str

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}"


@dataclass
class Policy:
    kind: str  # pruner | regularizer | lr_scheduler | extension
    instance: str
    index: int
    epochs: list[int] | None = None
    starting_epoch: int = 0
    ending_epoch: int = 1
    frequency: int = 1
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"policies[{self.index}]"

    def active(self, epoch: int) -> bool:
        if self.epochs is not None:
            return epoch in self.epochs
        return (self.starting_epoch <= epoch < self.ending_epoch
                and (epoch - self.starting_epoch) % self.frequency == 0)

    def scheduled_epochs(self) -> list[int]:
        if self.epochs is not None:
            return sorted(self.epochs)
        return list(range(self.starting_epoch, self.ending_epoch, self.frequency))


@dataclass
class Recipe:
    version: int
    pruners: dict[str, Component]
    regularizers: dict[str, Component]
    lr_schedulers: dict[str, Component]
    extensions: dict[str, Component]
    policies: list[Policy]
    source: str | None = None
    text: str = ""
    knowledge_distillation: dict[str, Any] | None = None  # see catalog.KNOWLEDGE_DISTILLATION

    def section(self, name: str) -> dict[str, Component]:
        return getattr(self, name)

    def last_epoch(self) -> int:
        """The last epoch a pruner, regularizer or extension acts in (0 for a one-shot recipe).

        lr-scheduler policies are left out: as in Distiller they span the whole run (e.g.
        `ending_epoch: 400`), whose length the caller chooses."""
        return max((max(p.scheduled_epochs(), default=0) for p in self.policies
                    if p.kind != "lr_scheduler"), default=0)


def _known(section: str) -> dict[str, dict[str, Arg]] | tuple[str, ...]:
    return {
        "pruners": catalog.PRUNERS, "regularizers": catalog.REGULARIZERS,
        "extensions": catalog.EXTENSIONS, "lr_schedulers": catalog.LR_SCHEDULERS,
    }[section]


def _component(section: str, name: str, body: Any) -> Component:
    path = f"{section}.{name}"
    if not isinstance(body, dict):
        raise RecipeError(path, f"must be a map with a 'class' key, got {shown(body)}")
    args = dict(body)
    cls = args.pop("class", None)
    if not cls:
        raise RecipeError(f"{path}.class", "required key is missing")
    known = _known(section)
    if not isinstance(cls, str) or cls not in known:  # a list or map here: no TypeError
        raise RecipeError(f"{path}.class", f"unknown {section[:-1].replace('_', ' ')} class "
                          f"{shown(cls)} (known: {', '.join(sorted(known)) or 'none yet'})")
    if isinstance(known, dict):
        args = check_args(known[cls], args, path)
    return Component(name, cls, args, section)


def _int(value: Any, path: str, minimum: int = 0) -> int:
    return check_value(Arg("int", minimum=minimum), value, path)


def _policy(i: int, body: Any, recipe: dict[str, dict[str, Component]]) -> Policy:
    path = f"policies[{i}]"
    if not isinstance(body, dict):
        raise RecipeError(path, f"must be a map, got {shown(body)}")
    kinds = [k for k in POLICY_KINDS if k in body]
    if len(kinds) != 1:
        raise RecipeError(path, f"must name exactly one of {', '.join(POLICY_KINDS)}; "
                          f"found {kinds or 'none'}")
    kind = kinds[0]
    allowed = {kind, "epochs", "starting_epoch", "ending_epoch", "frequency"}
    extra = sorted(set(body) - allowed)
    if extra:
        raise RecipeError(f"{path}.{extra[0]}", "unknown key")
    ref = body[kind]
    if isinstance(ref, str):
        ref = {"instance_name": ref}
    if not isinstance(ref, dict) or "instance_name" not in ref:
        raise RecipeError(f"{path}.{kind}.instance_name", "required key is missing")
    extra = sorted(set(ref) - {"instance_name", "args"})
    if extra:
        raise RecipeError(f"{path}.{kind}.{extra[0]}", "unknown key")
    instance = ref["instance_name"]
    section = POLICY_KINDS[kind]
    if not isinstance(instance, str) or instance not in recipe[section]:
        raise RecipeError(f"{path}.{kind}.instance_name", f"no {kind} named {shown(instance)} in "
                          f"{section} (defined: {', '.join(recipe[section]) or 'none'})")
    spec = {"pruner": catalog.POLICY_ARGS, "regularizer": catalog.REGULARIZER_POLICY_ARGS}
    given = ref.get("args") or {}
    if not isinstance(given, dict):
        raise RecipeError(f"{path}.{kind}.args", f"must be a map, got {shown(given)}")
    args = check_args(spec.get(kind, {}), given, f"{path}.{kind}.args")
    if args.get("mask_gradients") and not args.get("mask_on_forward_only"):
        raise RecipeError(f"{path}.{kind}.args.mask_gradients", "needs mask_on_forward_only: "
                          "true (Distiller: the two are exclusive otherwise)")
    policy = Policy(kind, instance, i, args=args)
    if "epochs" in body:
        if any(k in body for k in ("starting_epoch", "ending_epoch", "frequency")):
            raise RecipeError(path, "give either epochs or starting_epoch/ending_epoch/"
                              "frequency, not both")
        epochs = body["epochs"]
        if not isinstance(epochs, list) or not epochs:
            raise RecipeError(f"{path}.epochs", f"must be a non-empty list, got {shown(epochs)}")
        policy.epochs = [_int(e, f"{path}.epochs[{j}]") for j, e in enumerate(epochs)]
    else:
        for key in ("starting_epoch", "ending_epoch"):
            if key not in body:
                raise RecipeError(f"{path}.{key}", "required key is missing (or give epochs)")
        policy.starting_epoch = _int(body["starting_epoch"], f"{path}.starting_epoch")
        policy.ending_epoch = _int(body["ending_epoch"], f"{path}.ending_epoch")
        policy.frequency = _int(body.get("frequency", 1), f"{path}.frequency", minimum=1)
        if policy.ending_epoch <= policy.starting_epoch:
            raise RecipeError(f"{path}.ending_epoch", f"must be greater than starting_epoch "
                              f"({policy.starting_epoch}), got {policy.ending_epoch}")
    return policy


def parse_recipe(text: str, source: str | None = None) -> Recipe:
    """Parse rendered recipe text (no placeholders left) and validate its grammar."""
    doc = load_yaml(text, source)  # size-checked, aliases refused (yamltext.py)
    if not isinstance(doc, dict):
        raise RecipeError("", "a recipe must be a YAML map", source)
    try:
        unknown = sorted(set(doc) - {"version", *SECTIONS, "policies", KD})
        if "network" in unknown and "policies" not in doc:
            raise RecipeError("network", "this is an AMC (automated model compression) "
                              "configuration, not a scheduling recipe: it lists the layers an "
                              "AMC agent may prune and has no policies; the suite runs "
                              "scheduling recipes only")
        if unknown:
            raise RecipeError(unknown[0], f"unknown top-level key (accepted: version, "
                              f"{', '.join(SECTIONS)}, policies, {KD})")
        version = doc.get("version", 1)
        if version != 1:
            raise RecipeError("version", f"only version 1 is supported, got {shown(version)}")
        sections: dict[str, dict[str, Component]] = {}
        for section in SECTIONS:
            body = doc.get(section) or {}
            if not isinstance(body, dict):
                raise RecipeError(section, f"must be a map of instance names, got {shown(body)}")
            sections[section] = {str(n): _component(section, str(n), b) for n, b in body.items()}
        policies = doc.get("policies") or []
        if not isinstance(policies, list):
            raise RecipeError("policies", f"must be a list, got {shown(policies)}")
        parsed = [_policy(i, p, sections) for i, p in enumerate(policies)]
        kd = None
        if doc.get(KD) is not None:
            if not isinstance(doc[KD], dict):
                raise RecipeError(KD, f"must be a map, got {shown(doc[KD])}")
            kd = check_args(catalog.KNOWLEDGE_DISTILLATION, doc[KD], KD)
    except RecipeError as e:
        raise RecipeError(e.path, e.message, source) from None
    return Recipe(version, **sections, policies=parsed, source=source, text=text,
                  knowledge_distillation=kd)


def load_recipe(path: str | Path, params: dict[str, Any] | None = None) -> Recipe:
    """Read a recipe file, fill its template parameters, parse and validate it."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError("", f"recipe file not found: {path}")
    text = render(read_recipe(path), params, source=path.name)
    return parse_recipe(text, source=path.name)
