"""Compare every method we ship on one held-out style, same data and budget, over seeds, in one report.

One job: the papers' research check in the toy world. Every personalisation method learns the same
StyleRef set (a held-out style of the pre-trained toy world) with the same LoRA rank, learning rate,
batch and number of steps (textual inversion and Custom Diffusion have their own learning rates, as
they train an embedding and whole projections); the base model is prompted with the untrained token.
Multi-StyleForge trains on the same images captioned by part (``[V1]`` people, ``[V2]`` the rest) and
draws people prompts with its first token, the others with its second. The classic style-transfer
baselines restyle the base model's images with the StyleRef set (Gatys, AdaIN with the shipped decoder,
and an encoder-decoder trained per style and seed on toy-world content images). All runs are generated
with the toy-world protocol and evaluated together (``<out>/report/report.html``); ``<out>/compare.md``
/ ``compare.json`` give each method's mean and std over seeds of the style score, CLIP-T and KID on
people and non-people prompts, its training time and seconds per image, and say what the table shows
about three claims: StyleBoost beats DreamBooth on people prompts; Multi-StyleForge restores prompt
alignment (CLIP-T) on people prompts; personalisation beats restyling the base model's images.

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
from styleboost.evaluation.protocol import evaluate_runs, generate_runs
from styleboost.experiments.embedded import embedded_settings, toyworld_file, toyworld_protocol
from styleboost.generation.records import read_metadata
from styleboost.styles.stylize import check_style
from styleboost.toyworld import assets
from styleboost.toyworld.world import HELDOUT_STYLES
from styleboost.training import loop
from styleboost.training.config import TrainConfig
from styleboost.transfer.config import TransferConfig
from styleboost.transfer.transfer import transfer_folder
from styleboost.transfer.transfer_training import TransferTrainConfig, train_transfer

COMPARED_METRICS = (("style_score", "style", True), ("clip_t", "CLIP-T", True), ("kid", "KID x10^3", False))
SUMMARY_SETS = ("people", "non_people", "overall")


@dataclass(frozen=True)
class MethodSpec:
    """One compared method: its name, what it is, and how its images are made: trained with ``settings``
    (personalisation), by restyling the base model's images (``transfer``), or neither (the base model)."""

    name: str
    description: str
    settings: dict[str, Any] | None = None
    by_part: bool = False  # trained on the StyleRef set captioned by part ([V1] people, [V2] the rest)
    set_tokens: tuple[str, ...] = ()  # generate's --set-token for its runs
    transfer: str | None = None  # the ``styleboost transfer`` method restyling the base model's images
    label: str = ""  # its row in the README's table

    @property
    def per_seed(self) -> bool:
        """Whether it trains something, once per comparison seed."""
        return self.settings is not None or self.transfer == ENCODER_DECODER


ENCODER_DECODER = "encoder-decoder"
METHODS: tuple[MethodSpec, ...] = (
    MethodSpec("base", "the pre-trained model, prompt alone (the token is untrained)", label="base (prompt alone)"),
    MethodSpec("dreambooth", "DreamBooth (LoRA): prior term on class images the frozen model draws for 'a person'",
               {"method": "lora", "aux_mode": "generated", "aux_prompt": "a person", "num_aux_images": 16,
                "aux_inference_steps": 20}, label="DreamBooth (generated class images)"),
    MethodSpec("styleboost", "StyleBoost (LoRA): prior term on the curated Aux set of people in named styles",
               {"method": "lora", "aux_mode": "curated"}, label="StyleBoost (curated Aux)"),
    MethodSpec("multi_styleforge", "Multi-StyleForge (LoRA): StyleBoost with two tokens chosen by caption, sks for "
               "the StyleRef set's people and ohwx for the rest; people prompts are drawn with sks, the others with "
               "ohwx", {"method": "lora", "aux_mode": "curated", "token": ["sks", "ohwx"]}, by_part=True,
               set_tokens=("people=1", "non_people=2"), label="Multi-StyleForge (two tokens, curated Aux)"),
    MethodSpec("lora", "LoRA on the StyleRef set alone, no prior term", {"method": "lora", "aux_mode": "none"},
               label="LoRA, no prior"),
    MethodSpec("textual_inversion", "textual inversion: one new token's embedding, model frozen",
               {"method": "textual_inversion", "aux_mode": "none", "new_token": ["<toy-style>"],
                "initializer_token": "style", "learning_rate": 2e-2}, label="textual inversion"),
    MethodSpec("custom_diffusion", "Custom Diffusion: the cross-attention key/value projections and a new token's "
               "embedding, no prior term", {"method": "custom_diffusion", "aux_mode": "none",
                                            "new_token": ["<toy-cd>"], "initializer_token": "style",
                                            "learning_rate": 1e-4}, label="Custom Diffusion"),
    MethodSpec("gatys", "Gatys et al. transfer of the base model's images: L-BFGS on each image, Gram matrices of "
               "the StyleRef set (random-weight VGG19 offline)", transfer="gatys",
               label="Gatys transfer of base images"),
    MethodSpec("adain", "AdaIN transfer of the base model's images with the shipped decoder and the StyleRef set's "
               "statistics", transfer="adain", label="AdaIN transfer of base images"),
    MethodSpec("encoder_decoder", "a per-style encoder-decoder (adaptive style transfer) trained on the StyleRef "
               "set and toy-world content images, restyling the base model's images", transfer=ENCODER_DECODER,
               label="encoder-decoder transfer of base images"),
)
METHOD_NAMES = tuple(m.name for m in METHODS)
METHOD_OF = {m.name: m for m in METHODS}


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
    transfer_steps: int = option(100, "gatys: L-BFGS evaluations per restyled image.")
    transfer_train_steps: int = option(300, "encoder-decoder: training steps of each per-style network.")
    readme: str | None = option(None, "Also write the result table into this README, between its "
                                "'<!-- compare-table -->' and '<!-- /compare-table -->' lines.")
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
        for name in ("max_train_steps", "train_batch_size", "images_per_prompt", "steps", "transfer_steps",
                     "transfer_train_steps"):
            if getattr(self, name) < 1:
                raise StyleBoostError(f"--{name.replace('_', '-')} must be at least 1")


def run_name(method: str, seed: int) -> str:
    return f"{method}-s{seed}"


def train_settings(cfg: CompareConfig, spec: MethodSpec, seed: int, sets, model: str, output_dir: Path,
                   by_part: Path | None = None) -> TrainConfig:
    """The embedded default's LoRA recipe with the method's changes, the comparison's budget and seed."""
    settings = {**embedded_settings(), "report_to": "none", "validation_steps": None, "num_validation_images": 1,
                "checkpointing_steps": 10**9}
    settings.update(
        pretrained_model_name_or_path=model, styleref_dir=str(sets.styleref), aux_dir=str(sets.aux), seed=seed,
        max_train_steps=cfg.max_train_steps, train_batch_size=cfg.train_batch_size, output_dir=str(output_dir),
        validation_prompts=str(toyworld_file("prompts", "validation.txt")), **(spec.settings or {}))
    if spec.by_part:  # the StyleRef set captioned by part (written once by train_runs)
        settings["styleref_dir"] = str(by_part)
    if settings["aux_mode"] != "curated":  # generated mode would read class images from aux_dir: the curated set
        settings["aux_dir"] = None
    return TrainConfig(**settings)


REUSE_KEYS = ("pretrained_model_name_or_path", "styleref_dir", "aux_dir", "method", "aux_mode", "seed",
              "max_train_steps", "train_batch_size", "learning_rate", "rank", "token", "new_token")


def made_with(manifest: dict[str, Any], settings: Any, keys: tuple[str, ...] | None = None) -> bool:
    """Whether a run.json's config records these settings: ``keys`` of them, by default every one but the
    progress bars and --overwrite."""
    recorded, wanted = manifest.get("config", {}), dataclasses.asdict(settings)
    return all(recorded.get(k) == wanted[k] for k in keys or [k for k in wanted if k not in ("progress", "overwrite")])


def finished(output_dir: Path, settings: Any, keys: tuple[str, ...] | None = None) -> bool:
    """Whether ``output_dir`` holds a finished run trained with these settings (so it can be reused)."""
    manifest = read_manifest(output_dir)
    return manifest.get("status") == "finished" and made_with(manifest, settings, keys)


def train_runs(cfg: CompareConfig, sets, model: str, out: Path) -> list[str]:
    """Train (or reuse) every method x seed; returns the ``NAME=DIR`` run specs, base first."""
    runs = ["base="]
    trained = [m for m in METHODS if m.name in cfg.methods and m.settings is not None]
    by_part = (assets.write_part_captions(sets.styleref, sets.styleref.parent / "styleref_by_part")
               if any(m.by_part for m in trained) else None)
    for seed in cfg.seeds:  # seed by seed, so an interrupted comparison has whole seeds to report
        for spec in trained:
            name = run_name(spec.name, seed)
            folder = out / "runs" / name
            settings = train_settings(cfg, spec, seed, sets, model, folder, by_part)
            if not finished(folder, settings, REUSE_KEYS):
                print(f"styleboost compare: training {name} ({spec.description})", flush=True)
                settings.validate()
                shutil.rmtree(out / "generated" / name, ignore_errors=True)  # images of an older run
                loop.train(dataclasses.replace(settings, overwrite=True))
            runs.append(f"{name}={folder}")
    return runs


def transfer_model(cfg: CompareConfig, sets, content: Path, out: Path, name: str, seed: int) -> str:
    """The per-style encoder-decoder of ``seed`` (trained, or reused when finished with these settings)."""
    folder = out / "runs" / name
    settings = TransferTrainConfig(styleref_dir=str(sets.styleref), content_dir=str(content), output_dir=str(folder),
                                   max_train_steps=cfg.transfer_train_steps, seed=seed, progress=cfg.progress)
    if not finished(folder, settings):
        print(f"styleboost compare: training {name} ({METHOD_OF['encoder_decoder'].description})", flush=True)
        shutil.rmtree(out / "generated" / name, ignore_errors=True)  # images of an older network
        train_transfer(dataclasses.replace(settings, overwrite=True))
    return str(folder)


def transfer_runs(cfg: CompareConfig, sets, base_images: Path, out: Path, size: int) -> dict[str, Path]:
    """Restyle the base model's images with each transfer method (per seed where it trains a network);
    {run name: folder of the restyled images, in generate's record format}."""
    folders = {}
    selected = [m for m in METHODS if m.transfer and m.name in cfg.methods]
    content = assets.make_content_set(sets.styleref.parent) if any(m.per_seed for m in selected) else None
    for spec in selected:
        for seed in cfg.seeds if spec.per_seed else [None]:
            name = spec.name if seed is None else run_name(spec.name, seed)
            folder = out / "generated" / name
            trained = seed is not None  # a per-style network: its style is the StyleRef set it learnt
            config = TransferConfig(method=spec.transfer, content=str(base_images), out=str(folder), size=size,
                                    style=None if trained else str(sets.styleref), steps=cfg.transfer_steps,
                                    model=transfer_model(cfg, sets, content, out, name, seed) if trained else None,
                                    progress=cfg.progress)
            print(f"styleboost compare: restyling the base images with {name}", flush=True)
            transfer_folder(config, remake_stale=True)  # images made with other settings or networks: made again
            folders[name] = folder
    return folders


def method_of(run: str) -> str:
    """The method of a run name (``<method>-s<seed>``, or the method itself for unseeded runs)."""
    return run.rsplit("-s", 1)[0] if run.rsplit("-s", 1)[-1].isdigit() else run


def seconds_per_image(folder: Path) -> float | None:
    """Seconds each image of a run folder took to make: the restyled images' own records, else the drawing time
    ``styleboost generate`` logs per run in runs.jsonl (weighted by the images each run made)."""
    restyled = [r["seconds"] for r in read_metadata(folder).values() if r.get("seconds") is not None]
    if restyled:
        return statistics.fmean(restyled)
    log = folder / "runs.jsonl"
    runs = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    timed = [(r["seconds_per_image"], r["generated"]) for r in runs if r.get("seconds_per_image") is not None]
    return sum(s * n for s, n in timed) / sum(n for _, n in timed) if timed else None


def timings(out: Path, folders: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Per method: training seconds (the runs' run.json) and seconds per image (a restyled image adds the base
    model's drawing of it), mean and std over seeds."""
    per_image = {name: seconds_per_image(folder) for name, folder in folders.items()}
    by_method: dict[str, dict[str, list[float]]] = {}
    for name, seconds in per_image.items():
        method = method_of(name)
        entry = by_method.setdefault(method, {"train_seconds": [], "seconds_per_image": []})
        if seconds is not None:
            drawing = (per_image.get("base") or 0.0) if METHOD_OF[method].transfer else 0.0  # of the restyled image
            entry["seconds_per_image"].append(seconds + drawing)
        trained = read_manifest(out / "runs" / name).get("train_seconds")
        if trained is not None:
            entry["train_seconds"].append(trained)
    return {m: {k: mean_std(v) if v else None for k, v in entry.items()} for m, entry in by_method.items()}


def mean_std(values: list[float]) -> dict[str, float | int]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values)}


def summarise(report: dict[str, Any], methods: list[str]) -> dict[str, Any]:
    """Mean and std over each method's runs (its seeds) of the compared metrics, per prompt set and overall."""
    by_method: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    for run in report["runs"]:
        by_method[method_of(run["name"])].append(run)
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


LABELS = {"styleboost": "StyleBoost", "dreambooth": "DreamBooth", "multi_styleforge": "Multi-StyleForge",
          "gatys": "Gatys", "adain": "AdaIN", "encoder_decoder": "encoder-decoder"}
TRANSFER_NAMES = tuple(m.name for m in METHODS if m.transfer)


def versus(table: dict[str, Any], a: str, b: str, group: str, keys: tuple[str, ...] | None = None) -> list[str]:
    """One sentence per compared metric (or ``keys``): method ``a`` against ``b`` on a prompt set, read off the
    table in the metric's direction (no thresholds tuned to agree); a line saying what to run when one is missing."""
    if not {a, b} <= set(table):
        return [f"this compares {a} with {b}: run both to check it"]
    first, second = table[a][group], table[b][group]
    label_a, label_b = LABELS.get(a, a), LABELS.get(b, b)
    lines = []
    for key, label, higher in COMPARED_METRICS:
        if key in first and key in second and (keys is None or key in keys):
            scale = 1000.0 if key == "kid" else 1.0  # as the tables show it
            x, y = first[key]["mean"] * scale, second[key]["mean"] * scale
            better = (x > y) if higher else (x < y)
            lines.append(f"{group.replace('_', '-')} prompts, {label}: {label_a} {x:.4g} vs {label_b} {y:.4g} -> "
                         f"{label_a} {'better' if better else 'not better'}")
    return lines


def claim(table: dict[str, Any]) -> list[str]:
    """The StyleBoost paper's claim: StyleBoost beats DreamBooth on people prompts."""
    return versus(table, "styleboost", "dreambooth", "people")


def claims(table: dict[str, Any]) -> dict[str, list[str]]:
    """Each claim the comparison checks, with its sentences."""
    alignment = [line for other in ("dreambooth", "styleboost")
                 for line in versus(table, "multi_styleforge", other, "people", keys=("clip_t", "style_score"))]
    transfer = [line for name in TRANSFER_NAMES if name in table
                for line in versus(table, "styleboost", name, "overall")] or ["run a transfer method to check it"]
    return {
        "StyleBoost beats DreamBooth on people prompts for style, keeping prompt alignment": claim(table),
        "Multi-StyleForge restores prompt alignment (CLIP-T) on people prompts": alignment,
        "Personalisation beats restyling the base model's images": transfer,
    }


def mean_std_cell(key: str, value: dict[str, float | int] | None) -> str:
    """``mean ± std`` of a compared metric as the table shows it (KID x 1000), ``-`` when missing."""
    if value is None:
        return "-"
    scale = 1000.0 if key == "kid" else 1.0
    return f"{value['mean'] * scale:.3f} ± {value['std'] * scale:.3f}"


def seconds_cell(value: dict[str, float | int] | None) -> str:
    return "-" if value is None else f"{value['mean']:.2f} ± {value['std']:.2f}"


def markdown(table: dict[str, Any], cfg: CompareConfig, claim_sets: dict[str, list[str]],
             timing: dict[str, dict[str, Any]]) -> str:
    lines = [f"# Method comparison: held-out style, {len(cfg.seeds)} seed(s), {cfg.max_train_steps} steps", ""]
    for group in SUMMARY_SETS:
        lines += [f"## {group.replace('_', '-')} prompts" if group != "overall" else "## all prompts", ""]
        header = ["method", *(f"{label} {'(higher)' if higher else '(lower)'}" for _, label, higher in COMPARED_METRICS)]
        rows = [[method, *(mean_std_cell(key, groups[group].get(key)) for key, _, _ in COMPARED_METRICS)]
                for method, groups in table.items()]
        lines += [markdown_table(header, rows), ""]
    lines += ["## Cost (seconds on this machine; a restyled image includes the base model's drawing of it)", ""]
    rows = [[method, seconds_cell(timing.get(method, {}).get("train_seconds")),
             seconds_cell(timing.get(method, {}).get("seconds_per_image"))] for method in table]
    lines += [markdown_table(["method", "training s", "s / image"], rows), ""]
    for title, claim_lines in claim_sets.items():
        lines += [f"## The claim: {title}", ""] + [f"- {line}" for line in claim_lines] + [""]
    lines += ["Methods: " + "; ".join(f"**{m.name}**: {m.description}" for m in METHODS if m.name in table), ""]
    return "\n".join(lines)


README_BEGIN, README_END = "<!-- compare-table -->", "<!-- /compare-table -->"
README_COLUMNS = (("people", "style_score", "people: style ↑"), ("people", "clip_t", "people: CLIP-T ↑"),
                  ("people", "kid", "people: KID ↓"), ("non_people", "style_score", "non-people: style ↑"),
                  ("non_people", "clip_t", "non-people: CLIP-T ↑"), ("non_people", "kid", "non-people: KID ↓"))


def readme_table(table: dict[str, Any], timing: dict[str, dict[str, Any]]) -> str:
    """The README's table: one row a method, people and non-people scores, then what it cost."""
    header = ["method", *(label for _, _, label in README_COLUMNS), "training s", "s / image"]
    rows = [[METHOD_OF[m].label or m,
             *(mean_std_cell(key, table[m][group].get(key)) for group, key, _ in README_COLUMNS),
             seconds_cell(timing.get(m, {}).get("train_seconds")),
             seconds_cell(timing.get(m, {}).get("seconds_per_image"))] for m in table]
    return markdown_table(header, rows)


def readme_around_table(path: Path) -> tuple[str, str]:
    """The README's text before and after its table markers (one line naming the file when it has none)."""
    if not path.is_file():
        raise StyleBoostError(f"--readme {path}: file not found")
    readme = path.read_text()
    if README_BEGIN not in readme or README_END not in readme.split(README_BEGIN, 1)[1]:
        raise StyleBoostError(f"--readme {path}: no '{README_BEGIN}' ... '{README_END}' lines to put the table between")
    before, rest = readme.split(README_BEGIN, 1)
    return before, rest.split(README_END, 1)[1]


def update_readme(path: Path, text: str) -> None:
    """Replace what stands between the README's table markers with ``text``."""
    before, after = readme_around_table(path)
    write_bytes_atomic(path, f"{before}{README_BEGIN}\n{text}\n{README_END}{after}".encode())


def compare(cfg: CompareConfig) -> dict[str, Any]:
    """Train every method x seed, generate and evaluate them together, write the summary; returns it."""
    cfg.validate()
    out = Path(cfg.out)
    if (out / "compare.json").exists() and not cfg.overwrite:
        raise StyleBoostError(f"--out {out} already holds a comparison; pass --overwrite to replace it")
    if cfg.readme:  # checked before the training, not after it
        readme_around_table(Path(cfg.readme))

    style = cfg.style or assets.TARGET_STYLE
    check_style(style)
    if style not in HELDOUT_STYLES:
        notice(f"--style {style} is not held out of pre-training (held out: {', '.join(HELDOUT_STYLES)}); "
               "the base model already knows it by name")
    sets = assets.make_experiment_sets(assets.default_experiment_root(style), style)
    model = str(assets.pipeline_path())
    runs = train_runs(cfg, sets, model, out)
    protocol = dataclasses.replace(toyworld_protocol(), images_per_prompt=cfg.images_per_prompt, steps=cfg.steps)
    selected = [m for m in METHODS if m.name in cfg.methods]
    per_run = {run_name(m.name, seed): {"set_tokens": list(m.set_tokens)}
               for m in selected if m.set_tokens for seed in cfg.seeds}
    folders = generate_runs(protocol, runs, out, model, {"progress": cfg.progress}, per_run)
    folders.update(transfer_runs(cfg, sets, folders["base"], out, protocol.image_size))
    report = evaluate_runs(protocol, folders, str(sets.styleref), out,
                           {"progress": cfg.progress, "overwrite": cfg.overwrite})
    table = summarise(report, [m.name for m in selected])
    claim_sets, timing = claims(table), timings(out, folders)
    summary = {"style": style, "settings": dataclasses.asdict(cfg), "methods": {m.name: m.description for m in METHODS},
               "table": table, "timing": timing, "claims": claim_sets, "claim": claim_sets[next(iter(claim_sets))]}
    write_bytes_atomic(out / "compare.md", markdown(table, cfg, claim_sets, timing).encode())
    write_bytes_atomic(out / "compare.json", (json.dumps(summary, indent=2) + "\n").encode())
    write_bytes_atomic(out / "readme_table.md", (readme_table(table, timing) + "\n").encode())
    if cfg.readme:
        update_readme(Path(cfg.readme), readme_table(table, timing))
    return summary


def run(config: CompareConfig) -> int:
    """``styleboost compare``: run the comparison and print its table."""
    summary = compare(config)
    print((Path(config.out) / "compare.md").read_text())
    print(f"styleboost: {len(summary['table'])} methods compared in {config.out} (report/report.html)")
    return 0
