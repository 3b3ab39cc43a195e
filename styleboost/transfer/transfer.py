"""``styleboost transfer``: restyle every content image with one method and write the images and their records.

One job: the recipe ``transfer_folder`` (read the content and style images, build the method once, restyle
what is not done yet, write a PNG per content image with its record in the PNG text and a ``metadata.jsonl``
line in ``styleboost generate``'s format) and the command. Re-running into the same ``--out`` skips images
already made with the same settings and refuses ones made otherwise; ``--overwrite`` makes them again.

Output layout (``out/``)::

    images/<content stem>.png         a plain content image restyled (or the generated run's own file name)
    metadata.jsonl                    one record per image: prompt fields carried over, method settings, losses
    run.json                          the settings, versions, counts and seconds per image of the last run
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from styleboost.core.images import file_sha256
from styleboost.core.manifest import package_versions, read_manifest, update_manifest
from styleboost.generation.records import append_jsonl, metadata_path, save_image, split_done
from styleboost.transfer.config import TransferConfig
from styleboost.transfer.inputs import ContentImage, content_images, load_tensor, to_image
from styleboost.transfer.methods import Method, build_method

# record fields that name inputs by path: moving the folders does not make an image stale (their hashes decide)
NOT_COMPARED = ("style", "style_files", "content_file")


def wanted_record(item: ContentImage, settings: dict[str, Any]) -> dict[str, Any]:
    """The fields an image of ``item`` must have been made with to count as done."""
    return {**settings, "content_file": str(item.path), "content_sha256": file_sha256(item.path)}


def compared_record(item: ContentImage, settings: dict[str, Any]) -> dict[str, Any]:
    """The fields an image of ``item`` already made must match to be kept (paths aside: their hashes decide)."""
    return {k: v for k, v in wanted_record(item, settings).items() if k not in NOT_COMPARED}


def restyle_all(config: TransferConfig, out: Path, todo: list[ContentImage], method: Method,
                settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Restyle each content image, saving its PNG and metadata line as soon as it is made."""
    out.mkdir(parents=True, exist_ok=True)
    records = {}
    for item in tqdm(todo, desc=f"transfer {config.method}", unit="img", disable=not config.progress):
        start = time.perf_counter()
        image, extras = method.restyle(load_tensor(item.path, config.size))
        record = {"file": item.file, **item.prompt, **wanted_record(item, settings),
                  "height": image.shape[2], "width": image.shape[3], **extras,
                  "seconds": round(time.perf_counter() - start, 3)}
        save_image(to_image(image), out / item.file, record)
        append_jsonl(metadata_path(out), record)
        records[item.file] = record
    return records


def transfer_folder(config: TransferConfig, remake_stale: bool = False) -> list[dict[str, Any]]:
    """Restyle every image of ``config.content`` (an image, a folder, or a ``styleboost generate`` run) with the
    style of ``config.style`` into ``config.out``; return the records of all of them, in content order.
    ``remake_stale``: images already there but made otherwise (other settings, another decoder or model file)
    are made again instead of refused."""
    config.validate()
    items = content_images(config.content)
    out = Path(config.out).expanduser()
    method = build_method(config)
    settings = {"method": config.method, "model": f"transfer:{config.method}", **method.style,
                "size": config.size, **method.settings}
    done, todo = split_done(out, items, lambda item: compared_record(item, settings), config.overwrite, keys=None,
                            remake_stale=remake_stale)
    start = time.perf_counter()
    made = restyle_all(config, out, todo, method, settings)
    seconds = (time.perf_counter() - start) / len(todo) if todo else None
    update_manifest(out, config=dataclasses.asdict(config), made=len(made), skipped=len(done),
                    seconds_per_image=seconds, versions=package_versions())
    records = {**done, **made}
    return [records[item.file] for item in items]


def run(config: TransferConfig) -> int:
    """``styleboost transfer``: restyle the images and say where they are and how long each took."""
    records = transfer_folder(config)
    seconds = read_manifest(Path(config.out).expanduser()).get("seconds_per_image")
    timing = f", {seconds:.2f} s/image" if seconds is not None else " (all already made)"
    print(f"{len(records)} images in {config.out} (metadata.jsonl){timing}")
    return 0
