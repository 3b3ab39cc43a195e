"""Compare personalisation methods on one held-out style, same data and budget, over seeds, in one report.

One job: the paper's research check in the toy world. Every method learns the same StyleRef set
(a held-out style of the pre-trained toy world) with the same LoRA rank, learning rate, batch and
number of steps (textual inversion has its own learning rate, as it trains one embedding); the base
model is prompted with the untrained token. All runs are generated with the toy-world protocol and
evaluated together (``<out>/report/report.html``); ``<out>/compare.md`` / ``compare.json`` give
each method's mean and std over seeds of the style score, CLIP-T and KID on people and non-people
prompts, and say what the table shows about the claim "StyleBoost beats DreamBooth on people
prompts for style without losing prompt alignment".

Trained runs are kept under ``<out>/runs/<method>-s<seed>``; a finished run is reused, so an
interrupted comparison resumes.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from styleboost.core.atomic import write_bytes_atomic
from styleboost.core.errors import StyleBoostError
from styleboost.core.manifest import read_manifest
from styleboost.core.markdown import markdown_table
from styleboost.core.notice import notice
from styleboost.core.settings import option
from styleboost.evaluation.protocol import run_protocol
from styleboost.experiments.embedded import embedded_settings, toyworld_file, toyworld_protocol
from styleboost.styles.stylize import check_style
from styleboost.toyworld import assets
from styleboost.toyworld.world import HELDOUT_STYLES
from styleboost.training import loop
from styleboost.training.config import TrainConfig

COMPARED_METRICS = (("style_score", "style", True), ("clip_t", "CLIP-T", True), ("kid", "KID x10^3", False))
SUMMARY_SETS = ("people", "non_people", "overall")


@dataclass(frozen=True)
class MethodSpec:
    """One compared method: its name, what it is, and its training settings (None: no training)."""

    name: str
    description: str
    settings: dict[str, Any] | None


METHODS: tuple[MethodSpec, ...] = (
    MethodSpec("base", "the pre-trained model, prompt alone (the token is untrained)", None),
    MethodSpec("dreambooth", "DreamBooth (LoRA): prior term on class images the frozen model draws for 'a person'",
               {"method": "lora", "aux_mode": "generated", "aux_prompt": "a person", "num_aux_images": 16,
                "aux_inference_steps": 20}),
    MethodSpec("styleboost", "StyleBoost (LoRA): prior term on the curated Aux set of people in named styles",
               {"method": "lora", "aux_mode": "curated"}),
    MethodSpec("lora", "LoRA on the StyleRef set alone, no prior term", {"method": "lora", "aux_mode": "none"}),
    MethodSpec("textual_inversion", "textual inversion: one new token's embedding, model frozen",
               {"method": "textual_inversion", "aux_mode": "none", "new_token": ["<toy-style>"],
                "initializer_token": "style", "learning_rate": 2e-2}),
)
METHOD_NAMES = tuple(m.name for m in METHODS)


@dataclass
class CompareConfig:
    """What is compared, on which style, with which budget."""

    out: str = option(help="Output folder: runs/, generated/, report/, compare.md, compare.json.")
    methods: list[str] = option(list(METHOD_NAMES), "Methods to compare.", choices=METHOD_NAMES)
    seeds: list[int] = option([0, 1, 2], "Training seeds of every trained method.")
    style: str | None = option(None, "Held-out toy style to learn (default: the embedded default's, thermal).")
    max_train_steps: int = option(400, "Optimizer steps of every trained method.")
    train_batch_size: int = option(4, "StyleRef images per step (the prior term adds as many).")
    images_per_prompt: int = option(4, "Generated images per prompt (seeds 0..n-1).")
    steps: int = option(20, "Denoising steps of the generated images.")
    overwrite: bool = option(False, "Replace a comparison already in --out (finished training runs are reused).")
    progress: bool = option(True, "Progress bars (--no-progress: none).")

    def validate(self) -> None:
        if not self.out:
            raise StyleBoostError("--out is required")
        unknown = sorted(set(self.methods) - set(METHOD_NAMES))
        if unknown:
            raise StyleBoostError(f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(METHOD_NAMES)}")
        if "base" not in self.methods:
            raise StyleBoostError("--methods must include base: every method is compared against it")
        if not self.seeds:
            raise StyleBoostError("--seeds needs at least one seed")
        for name in ("max_train_steps", "train_batch_size", "images_per_prompt", "steps"):
            if getattr(self, name) < 1:
                raise StyleBoostError(f"--{name.replace('_', '-')} must be at least 1")


def run_name(method: str, seed: int) -> str:
    return f"{method}-s{seed}"


def train_settings(cfg: CompareConfig, spec: MethodSpec, seed: int, sets, model: str, output_dir: Path) -> TrainConfig:
    """The embedded default's LoRA recipe with the method's changes, the comparison's budget and seed."""
    settings = {**embedded_settings(), "report_to": "none", "validation_steps": None, "num_validation_images": 1,
                "checkpointing_steps": 10**9}
    settings.update(
        pretrained_model_name_or_path=model, styleref_dir=str(sets.styleref), aux_dir=str(sets.aux), seed=seed,
        max_train_steps=cfg.max_train_steps, train_batch_size=cfg.train_batch_size, output_dir=str(output_dir),
        validation_prompts=str(toyworld_file("prompts", "validation.txt")), **(spec.settings or {}))
    if settings["aux_mode"] != "curated":  # generated mode would read class images from aux_dir: the curated set
        settings["aux_dir"] = None
    return TrainConfig(**settings)


REUSE_KEYS = ("pretrained_model_name_or_path", "styleref_dir", "aux_dir", "method", "aux_mode", "seed", "max_train_steps",
              "train_batch_size", "learning_rate", "rank", "new_token")


def finished(output_dir: Path, settings: TrainConfig) -> bool:
    """Whether ``output_dir`` holds a finished run trained with these settings (so it can be reused)."""
    data = read_manifest(output_dir)
    wanted = dataclasses.asdict(settings)
    return data.get("status") == "finished" and all(data.get("config", {}).get(k) == wanted[k] for k in REUSE_KEYS)


def train_runs(cfg: CompareConfig, sets, model: str, out: Path) -> list[str]:
    """Train (or reuse) every method x seed; returns the ``NAME=DIR`` run specs, base first."""
    runs = ["base="]
    trained = [m for m in METHODS if m.name in cfg.methods and m.settings is not None]
    for seed in cfg.seeds:  # seed by seed, so an interrupted comparison has whole seeds to report
        for spec in trained:
            name = run_name(spec.name, seed)
            folder = out / "runs" / name
            settings = train_settings(cfg, spec, seed, sets, model, folder)
            if not finished(folder, settings):
                print(f"styleboost compare: training {name} ({spec.description})", flush=True)
                settings.validate()
                shutil.rmtree(out / "generated" / name, ignore_errors=True)  # images of an older run
                loop.train(dataclasses.replace(settings, overwrite=True))
            runs.append(f"{name}={folder}")
    return runs


def mean_std(values: list[float]) -> dict[str, float | int]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values)}


def summarise(report: dict[str, Any], methods: list[str]) -> dict[str, Any]:
    """Mean and std over each method's runs (its seeds) of the compared metrics, per prompt set and overall."""
    by_method: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    for run in report["runs"]:
        by_method[run["name"].rsplit("-s", 1)[0] if run["name"] != "base" else "base"].append(run)
    table: dict[str, Any] = {}
    for method, runs in by_method.items():
        table[method] = {}
        for group in SUMMARY_SETS:
            sections = [r["overall"] if group == "overall" else r["prompt_sets"].get(group) for r in runs]
            table[method][group] = {
                key: mean_std([s[key] for s in sections if s and s.get(key) is not None])
                for key, _, _ in COMPARED_METRICS if all(s and s.get(key) is not None for s in sections)
            }
    return table


def claim(table: dict[str, Any]) -> list[str]:
    """Sentences on the paper's claim, read off the table (no thresholds tuned to agree)."""
    if not {"styleboost", "dreambooth"} <= set(table):
        return ["the claim compares styleboost with dreambooth: run both to check it"]
    sb, db = table["styleboost"]["people"], table["dreambooth"]["people"]
    lines = []
    for key, label, higher in COMPARED_METRICS:
        if key in sb and key in db:
            a, b = sb[key]["mean"], db[key]["mean"]
            better = (a > b) if higher else (a < b)
            lines.append(f"people prompts, {label}: StyleBoost {a:.4g} vs DreamBooth {b:.4g} -> "
                         f"StyleBoost {'better' if better else 'not better'}")
    return lines


def mean_std_cell(key: str, value: dict[str, float | int] | None) -> str:
    """``mean ± std`` of a compared metric as the table shows it (KID x 1000), ``-`` when missing."""
    if value is None:
        return "-"
    scale = 1000.0 if key == "kid" else 1.0
    return f"{value['mean'] * scale:.3f} ± {value['std'] * scale:.3f}"


def markdown(table: dict[str, Any], cfg: CompareConfig, claim_lines: list[str]) -> str:
    lines = [f"# Method comparison: held-out style, {len(cfg.seeds)} seed(s), {cfg.max_train_steps} steps", ""]
    for group in SUMMARY_SETS:
        lines += [f"## {group.replace('_', '-')} prompts" if group != "overall" else "## all prompts", ""]
        header = ["method", *(f"{label} {'(higher)' if higher else '(lower)'}" for _, label, higher in COMPARED_METRICS)]
        rows = [[method, *(mean_std_cell(key, groups[group].get(key)) for key, _, _ in COMPARED_METRICS)]
                for method, groups in table.items()]
        lines += [markdown_table(header, rows), ""]
    lines += ["## The claim: StyleBoost beats DreamBooth on people prompts for style, keeping prompt alignment", ""]
    lines += [f"- {line}" for line in claim_lines] + [""]
    lines += ["Methods: " + "; ".join(f"**{m.name}**: {m.description}" for m in METHODS if m.name in table), ""]
    return "\n".join(lines)


def compare(cfg: CompareConfig) -> dict[str, Any]:
    """Train every method x seed, generate and evaluate them together, write the summary; returns it."""
    cfg.validate()
    out = Path(cfg.out)
    if (out / "compare.json").exists() and not cfg.overwrite:
        raise StyleBoostError(f"--out {out} already holds a comparison; pass --overwrite to replace it")
    style = cfg.style or assets.TARGET_STYLE
    check_style(style)
    if style not in HELDOUT_STYLES:
        notice(f"--style {style} is not held out of pre-training (held out: {', '.join(HELDOUT_STYLES)}); "
               "the base model already knows it by name")
    sets = assets.make_experiment_sets(assets.default_experiment_root(style), style)
    model = str(assets.pipeline_path())
    runs = train_runs(cfg, sets, model, out)
    protocol = dataclasses.replace(toyworld_protocol(), images_per_prompt=cfg.images_per_prompt, steps=cfg.steps)
    report = run_protocol(protocol, runs, str(sets.styleref), out, model=model,
                          generate_settings={"progress": cfg.progress},
                          evaluate_settings={"progress": cfg.progress, "overwrite": cfg.overwrite})
    table = summarise(report, [m for m in METHOD_NAMES if m in cfg.methods])
    claim_lines = claim(table)
    summary = {"style": style, "settings": dataclasses.asdict(cfg), "methods": {m.name: m.description for m in METHODS},
               "table": table, "claim": claim_lines}
    write_bytes_atomic(out / "compare.md", markdown(table, cfg, claim_lines).encode())
    write_bytes_atomic(out / "compare.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary


def run(config: CompareConfig) -> int:
    """``styleboost compare``: run the comparison and print its table."""
    summary = compare(config)
    print((Path(config.out) / "compare.md").read_text())
    print(f"styleboost: {len(summary['table'])} methods compared in {config.out} (report/report.html)")
    return 0
