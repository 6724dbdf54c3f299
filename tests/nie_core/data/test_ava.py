from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nie_core.data.ava import AVA, parse_ava_txt, parse_ratings_csv


def votes_for(i: int) -> list[int]:
    """Distinct, easily recognised vote counts for image number i."""
    return [(i * 7 + k * 3) % 11 + (1 if k == i % 10 else 0) for k in range(10)]


def colour_for(i: int) -> tuple[int, int, int]:
    return (i * 37 % 256, i * 91 % 256, i * 53 % 256)


def make_ava(root: Path, n: int = 10, first_id: int = 953000) -> list[str]:
    """AVA layout with n solid-colour 40x30 JPEGs; returns the image ids."""
    (root / "images").mkdir(parents=True)
    lines, ids = [], []
    for i in range(n):
        image_id = str(first_id + i)
        ids.append(image_id)
        Image.new("RGB", (40, 30), colour_for(i)).save(root / "images" / f"{image_id}.jpg")
        fields = [i + 1, image_id, *votes_for(i), i % 5, 0, 1396]
        lines.append(" ".join(str(f) for f in fields))
    (root / "AVA.txt").write_text("\n".join(lines) + "\n")
    return ids


def test_parse_ava_txt(tmp_path):
    make_ava(tmp_path, n=3)
    entries = parse_ava_txt(tmp_path / "AVA.txt")
    assert [e.image_id for e in entries] == ["953000", "953001", "953002"]
    assert entries[1].index == 2 and entries[1].votes == tuple(votes_for(1))
    assert entries[1].semantic_tags == (1, 0) and entries[1].challenge_id == 1396
    votes = np.array(votes_for(2))
    assert entries[2].mean_score == pytest.approx((votes * np.arange(1, 11)).sum() / votes.sum())

    bad = tmp_path / "bad.txt"
    bad.write_text("1 953000 0 1 2 3 4 5 6 7 8 9 0 0 1\n\n2 953001 1 2 3\n")
    with pytest.raises(ValueError, match=r"bad.txt:3"):
        parse_ava_txt(bad)


def test_items_have_expected_shapes_and_distributions(tmp_path):
    make_ava(tmp_path, n=10)
    dataset = AVA(tmp_path, split="val", resize=32, crop=24, augment=False)
    assert len(dataset) == 2
    image, dist = dataset[0]
    assert image.shape == (3, 24, 24) and image.dtype == torch.float32
    assert dist.shape == (10,) and dist.sum().item() == pytest.approx(1.0)
    i = int(dataset.images[0].key) - 953000
    expected = torch.tensor(votes_for(i), dtype=torch.float32)
    assert torch.allclose(dist, expected / expected.sum())
    colour = torch.tensor(colour_for(i), dtype=torch.float32) / 255
    assert torch.allclose(image.mean(dim=(1, 2)), colour, atol=0.04)  # JPEG-compressed colour


def test_seeded_split_is_deterministic_disjoint_and_complete(tmp_path):
    ids = make_ava(tmp_path, n=20)

    def keys(split: str, seed: int) -> list[str]:
        return [image.key for image in AVA(tmp_path, split=split, seed=seed).images]

    train, val = keys("train", 0), keys("val", 0)
    assert len(val) == 4 and len(train) == 16
    assert set(train) | set(val) == set(ids) and not set(train) & set(val)
    assert keys("val", 0) == val
    assert any(keys("val", seed) != val for seed in (1, 2, 3))
    assert len(AVA(tmp_path, split="val", val_fraction=0.5).images) == 10
    with pytest.raises(ValueError, match="val_fraction"):
        AVA(tmp_path, val_fraction=1.0)


def test_official_split_file(tmp_path):
    ids = make_ava(tmp_path, n=8)
    (tmp_path / "generic_test.jpgl").write_text(f"{ids[1]}\n{ids[6]}\n\n99999\n")
    val = AVA(tmp_path, split="val", split_file="generic_test.jpgl")
    train = AVA(tmp_path, split="train", split_file=tmp_path / "generic_test.jpgl")
    assert [image.key for image in val.images] == [ids[1], ids[6]]
    assert [image.key for image in train.images] == [ids[i] for i in (0, 2, 3, 4, 5, 7)]

    (tmp_path / "unrelated.jpgl").write_text("1\n2\n")
    with pytest.raises(ValueError, match="unrelated.jpgl"):
        AVA(tmp_path, split_file="unrelated.jpgl")


def test_generic_csv_with_paths_relative_to_it(tmp_path):
    (tmp_path / "ratings" / "pics").mkdir(parents=True)
    rows = ["path," + ",".join(f"score{k}" for k in range(1, 11))]
    for i in range(5):
        Image.new("RGB", (20, 20), colour_for(i)).save(tmp_path / "ratings" / "pics" / f"{i}.png")
        rows.append(f"pics/{i}.png," + ",".join(str(v) for v in votes_for(i)))
    (tmp_path / "ratings" / "list.csv").write_text("\n".join(rows) + "\n")

    parsed = parse_ratings_csv(tmp_path / "ratings" / "list.csv")
    assert parsed[3].path == tmp_path / "ratings" / "pics" / "3.png"
    assert parsed[3].votes == tuple(votes_for(3))

    dataset = AVA(
        tmp_path,
        split="train",
        csv="ratings/list.csv",
        resize=16,
        crop=16,
        split_file=None,
        val_fraction=0.2,
    )
    assert len(dataset) == 4
    image, dist = dataset[0]
    assert image.shape == (3, 16, 16) and dist.sum().item() == pytest.approx(1.0)

    (tmp_path / "bad.csv").write_text("file,1,2\nx.png,1,2\n")
    with pytest.raises(ValueError, match="header"):
        AVA(tmp_path, csv="bad.csv")


def test_rows_without_votes_are_skipped(tmp_path):
    ids = make_ava(tmp_path, n=4)
    lines = (tmp_path / "AVA.txt").read_text().splitlines()
    lines[2] = f"3 {ids[2]} 0 0 0 0 0 0 0 0 0 0 0 0 1396"
    (tmp_path / "AVA.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "split.txt").write_text(ids[3] + "\n")
    with pytest.warns(UserWarning, match="1 image\\(s\\) without votes"):
        train = AVA(tmp_path, split="train", split_file="split.txt")
    assert [image.key for image in train.images] == [ids[0], ids[1]]


def test_missing_images_are_skipped_with_one_warning(tmp_path):
    ids = make_ava(tmp_path, n=10)
    (tmp_path / "split.txt").write_text("\n".join(ids[5:]) + "\n")  # val = last 5
    for image_id in ids[:3]:
        (tmp_path / "images" / f"{image_id}.jpg").unlink()
    with pytest.warns(UserWarning, match="skipped 3 missing") as record:
        train = AVA(tmp_path, split="train", split_file="split.txt")
    assert len(record) == 1
    assert [image.key for image in train.images] == ids[3:5]


def test_corrupt_image_is_replaced_without_crashing(tmp_path):
    ids = make_ava(tmp_path, n=6)
    (tmp_path / "split.txt").write_text(ids[5] + "\n")
    corrupt = tmp_path / "images" / f"{ids[1]}.jpg"
    corrupt.write_bytes(corrupt.read_bytes()[:-10])  # header intact, pixel data cut
    dataset = AVA(
        tmp_path, split="train", split_file="split.txt", resize=32, crop=32, augment=False
    )
    assert len(dataset) == 5
    with pytest.warns(UserWarning, match=str(corrupt.name)) as record:
        items = [dataset[i] for i in range(len(dataset))]
        items += [dataset[1]]
    assert len(record) == 1 and dataset.num_unreadable == 1
    # Item 1 is replaced by the next readable item (index 2).
    assert torch.equal(items[1][0], items[2][0]) and torch.equal(items[1][1], items[2][1])
    assert torch.equal(items[5][1], items[2][1])


def test_train_transform_is_random_and_eval_is_deterministic(tmp_path):
    (tmp_path / "images").mkdir()
    gradient = np.tile(np.arange(64, dtype=np.uint8)[None, :, None] * 4, (48, 1, 3))
    Image.fromarray(gradient).save(tmp_path / "images" / "1.jpg", quality=95)
    Image.fromarray(gradient).save(tmp_path / "images" / "2.jpg", quality=95)
    (tmp_path / "AVA.txt").write_text(
        "1 1 0 0 0 1 2 1 0 0 0 0 0 0 1\n2 2 0 0 0 1 2 1 0 0 0 0 0 0 1\n"
    )
    train = AVA(tmp_path, split="train", resize=32, crop=16, augment=True)
    evaluation = AVA(tmp_path, split="train", resize=32, crop=16, augment=False)
    torch.manual_seed(0)
    crops = {train[0][0].numpy().tobytes() for _ in range(12)}
    assert len(crops) > 2
    assert torch.equal(evaluation[0][0], evaluation[0][0])
    centre = evaluation[0][0]
    # A centre crop of the left-to-right ramp: columns 8..23 of the 32-wide resized image.
    assert centre[0, :, 0].mean() < centre[0, :, -1].mean()
    with pytest.raises(ValueError, match="crop"):
        AVA(tmp_path, resize=32, crop=40)


def test_layout_errors_name_the_path(tmp_path):
    with pytest.raises(ValueError, match="nowhere"):
        AVA(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="AVA.txt"):
        AVA(tmp_path)
    (tmp_path / "AVA.txt").write_text("")
    (tmp_path / "images").mkdir()
    with pytest.raises(ValueError, match="no images"):
        AVA(tmp_path)
    with pytest.raises(ValueError, match="split"):
        AVA(tmp_path, split="test")
