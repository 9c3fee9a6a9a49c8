"""A saved featurizer is sealed: written whole or not at all, checked byte for byte and value by value on load."""

import json
from pathlib import Path

import numpy as np
import pytest

import diffrep.featurizer
from diffrep import DiffusionFeaturizer
from diffrep._engine import files
from diffrep._engine.manifest import write_manifest

from .helpers import TINY

UNTRAINED = {**TINY, "max_steps": 0}


@pytest.fixture(scope="module")
def unet_pair(digits_small):
    """Two UNet featurizers of different weights (seeds), and the images they read."""
    X = digits_small[0][:40]
    first, second = (
        DiffusionFeaturizer(image_shape=(1, 8, 8), layers=("mid_block", "x0"), **{**UNTRAINED, "random_state": seed})
        for seed in (0, 1)
    )
    return first.fit(X), second.fit(X), X


@pytest.fixture(scope="module")
def mlp(table):
    return DiffusionFeaturizer(layers=("blocks.0", "x0"), timesteps=(5, 30), **UNTRAINED).fit(table[0])


def _leftovers(directory):
    """Hidden staging or set-aside directories a save left beside ``directory``."""
    return sorted(path.name for path in directory.parent.iterdir() if path.name.startswith(f".{directory.name}."))


def _edit_config(directory, edit):
    """Change ``diffrep_config.json`` and seal the directory again, as a hand-edited save whose author re-sealed it."""
    path = directory / "diffrep_config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    (directory / "diffrep_manifest.json").unlink()
    write_manifest(directory)


# ------------------------------------------------------------------ interrupted saves
@pytest.mark.parametrize("interruption", [KeyboardInterrupt(), OSError("No space left on device")], ids=["interrupt", "full-disk"])
def test_an_interrupted_save_leaves_the_previous_one_intact(unet_pair, tmp_path, monkeypatch, interruption):
    first, second, X = unet_pair
    directory = tmp_path / "saved"
    first.save_pretrained(directory)
    before = sorted(path.relative_to(directory) for path in directory.rglob("*"))

    def fail_after_the_network(*args):
        raise interruption

    monkeypatch.setattr(diffrep.featurizer, "write_featurizer_files", fail_after_the_network)
    with pytest.raises(type(interruption)):
        second.save_pretrained(directory)  # its network is written, its config is not
    assert sorted(path.relative_to(directory) for path in directory.rglob("*")) == before
    assert _leftovers(directory) == []
    np.testing.assert_array_equal(DiffusionFeaturizer.from_pretrained(directory).transform(X), first.transform(X))


def test_a_save_interrupted_while_swapping_directories_restores_the_previous_one(unet_pair, tmp_path, monkeypatch):
    first, second, X = unet_pair
    directory = tmp_path / "saved"
    first.save_pretrained(directory)
    monkeypatch.setattr(files, "_exchange", lambda *paths: False)  # a system without an atomic swap
    original = files.os.replace

    def interrupted_move_into_place(source, destination):
        if ".staged-" in str(source) and str(destination) == str(directory):
            raise KeyboardInterrupt  # the previous save is set aside, the new one not yet in place
        return original(source, destination)

    monkeypatch.setattr(files.os, "replace", interrupted_move_into_place)
    with pytest.raises(KeyboardInterrupt):
        second.save_pretrained(directory)
    monkeypatch.undo()
    assert _leftovers(directory) == []
    np.testing.assert_array_equal(DiffusionFeaturizer.from_pretrained(directory).transform(X), first.transform(X))


@pytest.mark.parametrize("atomic_swap", [True, False], ids=["exchange", "rename-aside"])
def test_a_save_replaces_the_previous_one_whole(unet_pair, tmp_path, monkeypatch, atomic_swap):
    first, second, X = unet_pair
    directory = tmp_path / "saved"
    first.save_pretrained(directory)
    if not atomic_swap:
        monkeypatch.setattr(files, "_exchange", lambda *paths: False)
    second.save_pretrained(directory)
    assert _leftovers(directory) == []
    np.testing.assert_array_equal(DiffusionFeaturizer.from_pretrained(directory).transform(X), second.transform(X))


def test_an_mlp_saved_over_a_unet_loads_back(unet_pair, mlp, table, tmp_path):
    unet_pair[0].save_pretrained(tmp_path)
    mlp.save_pretrained(tmp_path)
    assert not (tmp_path / "unet").exists() and not (tmp_path / "model_index.json").exists()
    loaded = DiffusionFeaturizer.from_pretrained(tmp_path)
    np.testing.assert_array_equal(loaded.transform(table[0]), mlp.transform(table[0]))


# ------------------------------------------------------------------ links and foreign directories
def test_a_planted_symlink_is_replaced_not_written_through(mlp, table, tmp_path):
    directory, victim = tmp_path / "saved", tmp_path / "victim.txt"
    victim.write_text("precious")
    mlp.save_pretrained(directory)
    (directory / "diffrep_config.json").unlink()
    (directory / "diffrep_config.json").symlink_to(victim)
    mlp.save_pretrained(directory)
    assert victim.read_text() == "precious"
    assert not (directory / "diffrep_config.json").is_symlink()
    np.testing.assert_array_equal(DiffusionFeaturizer.from_pretrained(directory).transform(table[0]), mlp.transform(table[0]))


def test_a_directory_that_is_a_symlink_is_refused(mlp, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(ValueError, match="link.*symbolic link"):
        mlp.save_pretrained(tmp_path / "link")
    assert list(target.iterdir()) == []


def test_a_directory_of_other_files_is_refused_and_kept(mlp, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds files that no save of a featurizer wrote"):
        mlp.save_pretrained(tmp_path)
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]


# ------------------------------------------------------------------ damaged files
@pytest.mark.parametrize(
    "name", ["diffrep_state.safetensors", "unet/diffusion_pytorch_model.safetensors", "diffrep_config.json"]
)
def test_a_flipped_byte_is_refused_naming_the_file(unet_pair, tmp_path, name):
    unet_pair[0].save_pretrained(tmp_path)
    path = tmp_path / name
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # the end of the file: array data, or the config's closing lines
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"{path}.*checksum"):
        DiffusionFeaturizer.from_pretrained(tmp_path)


def test_an_unlisted_file_is_refused_naming_it(unet_pair, tmp_path):
    unet_pair[0].save_pretrained(tmp_path)
    (tmp_path / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"planted")
    with pytest.raises(ValueError, match=r"does not list: \['unet/diffusion_pytorch_model.bin'\]"):
        DiffusionFeaturizer.from_pretrained(tmp_path)


def test_a_sealed_save_without_its_manifest_is_refused(mlp, tmp_path):
    mlp.save_pretrained(tmp_path)
    (tmp_path / "diffrep_manifest.json").unlink()
    with pytest.raises(ValueError, match="no diffrep_manifest.json"):
        DiffusionFeaturizer.from_pretrained(tmp_path)


def test_an_older_save_without_manifest_loads_with_a_warning(mlp, table, tmp_path):
    mlp.save_pretrained(tmp_path)
    (tmp_path / "diffrep_manifest.json").unlink()
    config = json.loads((tmp_path / "diffrep_config.json").read_text())
    (tmp_path / "diffrep_config.json").write_text(json.dumps({**config, "format_version": 1}))
    with pytest.warns(UserWarning, match="without checksums.*Save it again"):
        loaded = DiffusionFeaturizer.from_pretrained(tmp_path)
    np.testing.assert_array_equal(loaded.transform(table[0]), mlp.transform(table[0]))


# ------------------------------------------------------------------ config values
@pytest.mark.parametrize(
    "section, key, value",
    [
        ("params", "pooling", "median"),
        ("params", "n_noise_draws", 10**9),
        ("params", "batch_size", 0),
        ("params", "data_format", "channels_sideways"),
        ("params", "random_state", 1.5),
        ("params", "pooling_grid", 0),
        ("fitted", "noise_seed", 1.5),
        ("fitted", "timesteps", [5000]),
        ("fitted", "layers", ["no_such_block"]),
        ("fitted", "sample_shape", [7]),
        ("fitted", "scaling", "auto"),
    ],
)
def test_an_invalid_config_value_is_refused_naming_the_key(mlp, tmp_path, section, key, value):
    mlp.save_pretrained(tmp_path)
    _edit_config(tmp_path, lambda config: config[section].update({key: value}))
    with pytest.raises(ValueError, match=f"diffrep_config.json.*{key}"):
        DiffusionFeaturizer.from_pretrained(tmp_path)


@pytest.mark.parametrize("section, key", [("params", "pooling"), ("fitted", "noise_seed"), ("fitted", "scaling")])
def test_a_missing_config_key_is_named(mlp, tmp_path, section, key):
    mlp.save_pretrained(tmp_path)
    _edit_config(tmp_path, lambda config: config[section].pop(key))
    with pytest.raises(ValueError, match=f"diffrep_config.json.*lacks.*'{key}'"):
        DiffusionFeaturizer.from_pretrained(tmp_path)


def test_a_config_that_is_not_json_is_named(mlp, tmp_path):
    mlp.save_pretrained(tmp_path)
    (tmp_path / "diffrep_config.json").write_text("{not json")
    (tmp_path / "diffrep_manifest.json").unlink()
    write_manifest(tmp_path)
    with pytest.raises(ValueError, match="diffrep_config.json cannot be read"):
        DiffusionFeaturizer.from_pretrained(tmp_path)


# ------------------------------------------------------------------ other files diffrep writes
def test_a_figure_that_fails_midway_leaves_the_previous_one(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from diffrep.app.demo import SweepResult, plot_sweep

    figure = tmp_path / "curve.png"
    figure.write_bytes(b"the previous figure")

    def fail_midway(self, target, **kwargs):
        if hasattr(target, "write"):
            target.write(b"\x89PNG half")
        else:
            Path(target).write_bytes(b"\x89PNG half")
        raise OSError("No space left on device")

    monkeypatch.setattr(Figure, "savefig", fail_midway)
    result = SweepResult(rate=0.0, per_timestep={5: 0.9, 50: 0.5}, ensemble=0.8, baselines={"raw": 0.7})
    with pytest.raises(OSError, match="No space"):
        plot_sweep([result], [0.1, 1.0], figure)
    assert figure.read_bytes() == b"the previous figure"
    assert [path.name for path in tmp_path.iterdir()] == ["curve.png"]


def test_a_sealed_save_used_as_denoiser_is_checked_too(unet_pair, tmp_path):
    first, _, X = unet_pair
    first.save_pretrained(tmp_path)
    weights = tmp_path / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"{weights}.*checksum"):
        DiffusionFeaturizer(denoiser=tmp_path, image_shape=(1, 8, 8), **TINY).fit(X)


def test_a_directory_filled_by_another_process_meanwhile_is_swapped_not_refused(tmp_path, monkeypatch):
    destination, staged = tmp_path / "saved", tmp_path / ".saved.staged-1"
    staged.mkdir()
    (staged / "new").write_text("new")
    original = files.os.replace

    def another_process_first(source, target):
        if not destination.exists():  # it saves between our check and our rename
            destination.mkdir()
            (destination / "old").write_text("old")
        return original(source, target)

    monkeypatch.setattr(files.os, "replace", another_process_first)
    files.replace_directory(staged, destination)
    monkeypatch.undo()
    assert [path.name for path in destination.iterdir()] == ["new"]
    assert [path.name for path in tmp_path.iterdir()] == ["saved"]


def test_a_save_and_diffrep_files_are_as_readable_as_files_written_plainly(mlp, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "file").write_text("x")
    mlp.save_pretrained(tmp_path / "saved")
    modes = {path.name: path.stat().st_mode & 0o777 for path in (tmp_path / "saved").glob("diffrep_*")}
    assert (tmp_path / "saved").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    assert set(modes.values()) == {(plain / "file").stat().st_mode & 0o777}, modes
