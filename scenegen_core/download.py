"""Download the official weights into the layout of :mod:`scenegen_core.checkpoints`.

Usage::

    python -m scenegen_core.download --dest DIR [--only scenegen,vggt,dinov2,sam2] [--timeout 10]

Uses ``huggingface_hub.hf_hub_download`` (honours ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``,
``HF_TOKEN``; files already present are not fetched again). Without network it stops at the
first connection failure and prints every expected file and the directory it belongs in, so the
files can be copied there by hand; exit status 2. Exit status 0 when the layout is complete.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from scenegen_core.checkpoints import (
    COMPONENTS,
    DINOV2_HF_REPO,
    SAM2_CHECKPOINT,
    SAM2_REPO,
    SCENEGEN_REPO,
    SS_DECODER_KEY,
    TRELLIS_REPO,
    VGGT_REPO,
    WeightsLayout,
    pipeline_model_stems,
    validate_weights_dir,
)

EXIT_OK = 0
EXIT_INCOMPLETE = 2


class NetworkUnavailable(RuntimeError):
    """The hub cannot be reached (offline mode, refused/timed-out connection, DNS failure)."""


class RemoteFileMissing(RuntimeError):
    """The hub answered but the repository or file does not exist (or is gated)."""


@dataclass(frozen=True)
class DownloadOutcome:
    """Per component: whether its files are now in place, and why not."""

    component: str
    ok: bool
    message: str = ""


Fetch = Callable[[str, str, Path], Path]


def _classify(exc: Exception) -> Exception:
    from huggingface_hub import errors

    if isinstance(exc, errors.LocalEntryNotFoundError):  # offline mode, or no connection and no cache
        return NetworkUnavailable(str(exc).splitlines()[0])
    if isinstance(exc, (errors.RepositoryNotFoundError, errors.EntryNotFoundError, errors.RevisionNotFoundError, errors.GatedRepoError)):
        return RemoteFileMissing(str(exc).splitlines()[0])
    if isinstance(exc, errors.HfHubHTTPError) and exc.response is not None and exc.response.status_code < 500:
        return RemoteFileMissing(str(exc).splitlines()[0])
    return NetworkUnavailable(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no details'}")


def hub_fetch(repo_id: str, filename: str, local_dir: Path) -> Path:
    """Download ``filename`` of ``repo_id`` into ``local_dir / filename`` (kept if present).

    One metadata request without retries comes first: ``hf_hub_download`` itself retries
    connection errors with back-off for ~25 s per file, far too slow to report "no network".
    """
    target = local_dir / filename
    if target.is_file():
        return target
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url

    if constants.HF_HUB_OFFLINE:
        raise NetworkUnavailable("HF_HUB_OFFLINE is set")
    try:
        get_hf_file_metadata(hf_hub_url(repo_id, filename), timeout=constants.HF_HUB_ETAG_TIMEOUT)
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, local_dir=str(local_dir)))
    except Exception as exc:  # the hub raises many transport-level types; classify them all
        raise _classify(exc) from exc


def _first_available(fetch: Fetch, repo_id: str, names: Sequence[str], local_dir: Path) -> Path:
    last: RemoteFileMissing | None = None
    for name in names:
        try:
            return fetch(repo_id, name, local_dir)
        except RemoteFileMissing as exc:
            last = exc
    raise RemoteFileMissing(f"none of {list(names)} in {repo_id}: {last}")


def _download_scenegen(layout: WeightsLayout, fetch: Fetch) -> None:
    directory = layout.directory("scenegen")
    pipeline = fetch(SCENEGEN_REPO, "pipeline.json", directory)
    stems = pipeline_model_stems(json.loads(Path(pipeline).read_text()))
    for key, stem in stems.items():
        try:
            fetch(SCENEGEN_REPO, f"{stem}.json", directory)
            _first_available(fetch, SCENEGEN_REPO, [f"{stem}.safetensors", f"{stem}.pt"], directory)
        except RemoteFileMissing:
            if key != SS_DECODER_KEY:
                raise
            # The SS decoder is TRELLIS's; fetch it from TRELLIS-image-large when not re-hosted.
            fetch(TRELLIS_REPO, f"{stem}.json", directory)
            fetch(TRELLIS_REPO, f"{stem}.safetensors", directory)


def _download_vggt(layout: WeightsLayout, fetch: Fetch) -> None:
    _first_available(fetch, VGGT_REPO, ["model.safetensors", "model.pt"], layout.directory("vggt"))


def _download_dinov2(layout: WeightsLayout, fetch: Fetch) -> None:
    fetch(DINOV2_HF_REPO, "config.json", layout.directory("dinov2"))
    fetch(DINOV2_HF_REPO, "model.safetensors", layout.directory("dinov2"))


def _download_sam2(layout: WeightsLayout, fetch: Fetch) -> None:
    fetch(SAM2_REPO, SAM2_CHECKPOINT, layout.directory("sam2"))


DOWNLOADERS: dict[str, Callable[[WeightsLayout, Fetch], None]] = {
    "scenegen": _download_scenegen,
    "vggt": _download_vggt,
    "dinov2": _download_dinov2,
    "sam2": _download_sam2,
}


def download(dest: str | Path, components: Sequence[str] = COMPONENTS, fetch: Fetch = hub_fetch) -> list[DownloadOutcome]:
    """Fetch every missing file of ``components`` into ``dest``.

    After the first NetworkUnavailable the remaining components are not attempted (each would
    wait for the same dead network); they are reported as skipped.
    """
    layout = WeightsLayout(Path(dest))
    outcomes = []
    offline_reason = ""
    for component in components:
        if validate_weights_dir(layout.root, [component]).complete:
            outcomes.append(DownloadOutcome(component, True, "already present"))
            continue
        if offline_reason:
            outcomes.append(DownloadOutcome(component, False, f"skipped, network unavailable ({offline_reason})"))
            continue
        try:
            DOWNLOADERS[component](layout, fetch)
        except NetworkUnavailable as exc:
            offline_reason = str(exc)
            outcomes.append(DownloadOutcome(component, False, f"network unavailable: {exc}"))
            continue
        except RemoteFileMissing as exc:
            outcomes.append(DownloadOutcome(component, False, f"not found on the hub: {exc}"))
            continue
        complete = validate_weights_dir(layout.root, [component]).complete
        outcomes.append(DownloadOutcome(component, complete, "" if complete else "downloaded files do not complete the layout"))
    return outcomes


def _parse_components(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown component(s) {unknown}; choose from {','.join(COMPONENTS)}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scenegen_core.download", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", required=True, type=Path, help="weights root directory")
    parser.add_argument("--only", type=_parse_components, default=list(COMPONENTS), help="comma-separated subset of " + ",".join(COMPONENTS))
    parser.add_argument("--timeout", type=int, default=10, help="seconds per connection attempt (default 10)")
    args = parser.parse_args(argv)
    # The hub reads these at import: set them before the first (lazy) import.
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(args.timeout))
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(args.timeout))

    outcomes = download(args.dest, args.only)
    for outcome in outcomes:
        status = "ok" if outcome.ok else "MISSING"
        print(f"{outcome.component:9s} {status}{': ' + outcome.message if outcome.message else ''}")
    report = validate_weights_dir(args.dest, args.only)
    if report.complete:
        print(f"all requested weights are in place under {report.root}")
        return EXIT_OK
    print(
        "\nCould not obtain every weight file. Download them on a machine with network access and "
        f"place them as follows (weights root {report.root}):\n{report.missing_message()}",
        file=sys.stderr,
    )
    return EXIT_INCOMPLETE


if __name__ == "__main__":
    sys.exit(main())
