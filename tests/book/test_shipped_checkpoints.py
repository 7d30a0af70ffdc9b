"""Facts about the trained models that ship with the book (hypernet_lib/checkpoints/).

* the whole set stays small enough to ship in the package (at most 20 MB);
* the manifest lists every file, with the sha256 and size the file has;
* every checkpoint a notebook's run asked for is listed, and every listed one is asked for;
* a notebook's committed outputs come from the file that ships: where they say they loaded it,
  the sha256 prefix they print is the manifest's.
"""
import hashlib
import json
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "hypernet_lib" / "checkpoints"
MANIFEST = json.loads((FOLDER / "manifest.json").read_text())
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
LIMIT_BYTES = 20 * 10**6                      # "at most 20 MB for the whole book"
# every status line ShippedCheckpoint writes names the file: loaded, saved, missing, other settings, retrain
ASKED = re.compile(r"(?:shipped checkpoint |and saved |shipped |instead of loading )([a-z0-9][a-z0-9_.-]*)\.pt\b")


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stream_text(nb):
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")


def asked_for():
    """{checkpoint name: notebook} for every shipped checkpoint a notebook's committed (cpu-scale)
    outputs say it loaded, saved, or looked for: what the run asked for, however the code is written."""
    names = {}
    for path in NOTEBOOKS:
        for name in ASKED.findall(stream_text(nbformat.read(path, as_version=4))):
            names[name] = path
    return names


def test_the_whole_set_is_at_most_20_mb():
    total = sum(p.stat().st_size for p in FOLDER.glob("*.pt"))
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in sorted(FOLDER.glob("*.pt")))
    assert total <= LIMIT_BYTES, f"shipped checkpoints take {total / 1e6:.1f} MB (> 20 MB): {sizes}"


def test_manifest_lists_every_file_with_its_sha256_and_size():
    on_disk = {p.stem for p in FOLDER.glob("*.pt")}
    assert on_disk == set(MANIFEST), f"files {sorted(on_disk)}, manifest {sorted(MANIFEST)}"
    for name, entry in MANIFEST.items():
        path = FOLDER / entry["file"]
        assert entry["file"] == f"{name}.pt"
        assert sha256(path) == entry["sha256"], f"{path.name} does not match its manifest sha256"
        assert path.stat().st_size == entry["bytes"]
        assert entry["settings"]["scale"] == "cpu", f"{name} was not made at cpu scale"


def test_every_notebook_checkpoint_is_shipped_and_every_shipped_one_is_used():
    names = asked_for()
    assert names, "no notebook asks for a shipped checkpoint: the pattern above is out of date"
    assert set(names) == set(MANIFEST), (f"notebooks ask for {sorted(names)}, "
                                         f"the manifest lists {sorted(MANIFEST)}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_outputs_come_from_the_shipped_file(path):
    text = stream_text(nbformat.read(path, as_version=4))
    for name, prefix in re.findall(r"loaded the shipped checkpoint ([a-z0-9_.-]+)\.pt \(sha256 ([0-9a-f]+)…", text):
        assert name in MANIFEST, f"{path.name} says it loaded {name}.pt, which does not ship"
        assert MANIFEST[name]["sha256"].startswith(prefix), (
            f"{path.name}'s outputs were made with another {name}.pt (sha256 {prefix}…, the shipped one "
            f"is {MANIFEST[name]['sha256'][:12]}…): re-execute it at cpu scale")
    for name in re.findall(r"saved ([a-z0-9_.-]+)\.pt \(", text):
        assert name in MANIFEST, f"{path.name} says it saved {name}.pt, which does not ship"



def test_chapter_4s_checkpoint_was_trained_with_the_partial_layers_of_the_library():
    """The shipped `partial` was trained with conv3-conv5 generated, and its settings say so. If
    PARTIAL_LAYERS changes, the chapter's SETTINGS and the shipped file must change with it."""
    from hypernet_lib.nn import PARTIAL_LAYERS
    assert MANIFEST["ch4_cifar"]["settings"]["partial"] == "conv3-conv5 generated"
    assert PARTIAL_LAYERS == ("conv3", "conv4", "conv5"), (
        "PARTIAL_LAYERS changed: update the 'partial' entry of chapter 4's SETTINGS and retrain "
        "(HYPERNET_RETRAIN=1) so that the shipped checkpoint holds the new net")


def test_chapter_4s_chunked_full_was_trained_with_normalised_fc_layers():
    """The shipped `chunked_full` has one weight-normalisation gain per fc layer, and its settings
    say so; a `ChunkedHyperWeights` built as the chapter builds it has the same parameters, of the
    same shapes, as the shipped state (so it loads, and the generator's d is the settings' d)."""
    import torch
    from hypernet_lib.nn import build_cifar_net
    settings = MANIFEST["ch4_cifar"]["settings"]
    assert settings["chunked_full"] == "fc weight-normalised"
    shipped = torch.load(FOLDER / "ch4_cifar.pt", weights_only=True, map_location="cpu")
    state = shipped["models"]["chunked_full"]
    net = build_cifar_net("chunked_full", num_classes=10, width=settings["width"], d=settings["d"])
    assert net.source.normalised == ["fc1", "fc2", "fc3"]
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == {k: tuple(v.shape) for k, v in state.items()}
