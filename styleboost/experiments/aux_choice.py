"""The Aux-choice comparison: StyleBoost in the toy world with the Aux set chosen by ``curate-aux``, with people
images drawn at random from the same pool, and with the hand-picked set, on the comparison's protocol and seeds.

One job: make the pool and the two other Aux sets, train (or reuse) StyleBoost with each Aux set, generate and
evaluate them beside the base model, and say which Aux set gives the best person-prompt style score and CLIP-T.
The pool: the toy world's people contents in its every named style but the target (and in natural colours),
plus non-people distractors and one near-duplicate; the hand-picked set is the toy world's own
(``assets.AUX_STYLES``, picked by hand as colour ramps like thermal's).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from styleboost.core.atomic import write_bytes_atomic
from styleboost.core.errors import StyleBoostError
from styleboost.core.settings import option
from styleboost.curation.curate import CurateConfig, curate_aux
from styleboost.evaluation.protocol import evaluate_runs, generate_runs
from styleboost.experiments.compare import (
    REUSE_KEYS,
    CompareConfig,
    MethodSpec,
    finished,
    mean_std,
    run_name,
    summarise,
    train_settings,
)
from styleboost.experiments.embedded import toyworld_protocol
from styleboost.toyworld import assets
from styleboost.toyworld.world import NAMED_STYLES, NATURAL, write_style_folder
from styleboost.training import loop

CHOICES = ("curated", "random", "hand_picked")
DISTRACTORS = ("house", "tree", "landscape", "animal")


@dataclasses.dataclass
class AuxChoiceConfig:
    """The settings of the Aux-choice comparison."""

    out: str = option(help="Folder for the pool, the Aux sets, the runs, the report and aux_choice.json.")
    seeds: list[int] = option([0, 1, 2], "Training seeds.", nargs="+", type=int)
    n: int = option(16, "Images in each Aux set (the hand-picked set has 16).")
    max_train_steps: int = option(400, "Training steps of every run.")
    images_per_prompt: int = option(4, "Images per protocol prompt.")
    steps: int = option(20, "Denoising steps of the protocol images.")
    progress: bool = option(True, "Progress bars.")


def write_pool(folder: Path, style: str) -> Path:
    """People in every named style but ``style`` and in natural colours, non-people distractors, one twin."""
    people = [(c, s) for s in (NATURAL, *[n for n in NAMED_STYLES if n != style]) for c in assets.AUX_CONTENTS]
    write_style_folder(folder, people + [(c, s) for s in NAMED_STYLES[:4] for c in DISTRACTORS], size=64, seed=11)
    first = sorted(folder.glob("*.png"))[0]
    shutil.copyfile(first, folder / f"999-{first.stem.split('-', 1)[1]}.png")
    shutil.copyfile(first.with_suffix(".txt"), folder / f"999-{first.stem.split('-', 1)[1]}.txt")
    return folder


def random_people(pool: Path, dest: Path, n: int, seed: int = 0) -> Path:
    """``n`` of the pool's people images (known by their content), drawn at random: what a user grabbing people
    images without looking would use."""
    people = [p for p in sorted(pool.glob("*.png")) if p.stem.split("-", 1)[1] in assets.PEOPLE_CONTENTS]
    dest.mkdir(parents=True, exist_ok=True)
    for index in np.random.default_rng(seed).choice(len(people), n, replace=False):
        for suffix in (".png", ".txt"):
            shutil.copyfile(people[index].with_suffix(suffix), dest / people[index].with_suffix(suffix).name)
    return dest


def aux_sets(cfg: AuxChoiceConfig, sets) -> dict[str, Path]:
    out = Path(cfg.out)
    pool = out / "pool"
    if not pool.is_dir():
        write_pool(pool, sets.style)
    curated = out / "aux" / "curated"
    if not (curated / "curation.json").is_file():
        curate_aux(CurateConfig(pool=str(pool), styleref=str(sets.styleref), out=str(curated), n=cfg.n,
                                encoder="toyworld", clip="toyworld", min_size=32, image_size=64, progress=cfg.progress))
    random = out / "aux" / "random"
    if not random.is_dir():
        random_people(pool, random, cfg.n)
    return {"curated": curated, "random": random, "hand_picked": sets.aux}


def compare_aux_choice(cfg: AuxChoiceConfig) -> dict[str, Any]:
    """Train, generate and evaluate StyleBoost with each Aux set; write and return the summary."""
    if not cfg.seeds:
        raise StyleBoostError("--seeds needs at least one seed")
    out = Path(cfg.out)
    sets = assets.make_experiment_sets(assets.default_experiment_root(), assets.TARGET_STYLE)
    model = str(assets.pipeline_path())
    folders = aux_sets(cfg, sets)
    budget = CompareConfig(out=str(out), seeds=cfg.seeds, max_train_steps=cfg.max_train_steps)
    runs = ["base="]
    for seed in cfg.seeds:
        for choice, aux in folders.items():
            spec = MethodSpec(choice, f"StyleBoost with the {choice} Aux set", {"method": "lora", "aux_mode": "curated"})
            folder = out / "runs" / run_name(choice, seed)
            settings = train_settings(budget, spec, seed, dataclasses.replace(sets, aux=aux), model, folder)
            if not finished(folder, settings, REUSE_KEYS):
                print(f"styleboost aux-choice: training {run_name(choice, seed)}", flush=True)
                loop.train(dataclasses.replace(settings, overwrite=True))
            runs.append(f"{run_name(choice, seed)}={folder}")
    protocol = dataclasses.replace(toyworld_protocol(), images_per_prompt=cfg.images_per_prompt, steps=cfg.steps)
    generated = generate_runs(protocol, runs, out, model, {"progress": cfg.progress}, {})
    report = evaluate_runs(protocol, generated, str(sets.styleref), out, {"progress": cfg.progress, "overwrite": True})
    table = summarise(report, ["base", *CHOICES])
    rows = json.loads((folders["curated"] / "curation.json").read_text())["images"]
    by_name = {Path(r["file"]).name: r["style"] for r in rows}  # the pool's style affinity of each image
    affinity = {"curated": mean_std([r["style"] for r in rows if r["chosen"]]),
                "random": mean_std([by_name[p.name] for p in sorted(folders["random"].glob("*.png"))])}
    summary = {"settings": dataclasses.asdict(cfg), "table": table, "aux_style_affinity": affinity}
    write_bytes_atomic(out / "aux_choice.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary
